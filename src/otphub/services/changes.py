"""Change notifications: a request waits for an activation to change, wherever the change
is made.

Waiters are ``Watch`` objects in a dict keyed by activation id (no task and no future per
waiter: a slotted object, a set entry and a timer handle, a few hundred bytes). They are
woken

- right after the commit of a change made in this process (``announce`` registers the
  wake-up on the transaction), without waiting for the cross-process path;
- by ``follow``, this process's one reader of the deployment's change feed (a worker
  started with the app, never by the CLI): PostgreSQL's NOTIFY on one dedicated connection,
  or SQLite's ``activation_changes`` rows, read every ``SQLITE_POLL`` seconds only while
  someone waits.

A wake-up means "look again": it may be spurious (a change of no interest, a change made
here and heard again from the feed, the feed reconnecting), so every waiter re-reads and
compares. Whoever waits registers first and reads after (``watch``), so that a change
committed between the read and the wait is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from otphub.db import changes as feed
from otphub.db.engine import Conn, PostgresDatabase
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.changes")

Receive = Any  # an ASGI receive callable (the http layer's; services know no ASGI types)

# SQLite: how often the change rows are read while someone waits, and how many at a time
# (more than that since the last read: every waiter is woken instead, to look again).
SQLITE_POLL = 0.025
SQLITE_BATCH = 500
# Waiting requests (wait= and event streams) per activation and process. Beyond, a wait=
# answers at once and a stream is refused (429): holding connections then costs a customer
# activations, which cost money and count toward its cap of live ones, so that one key
# cannot take every connection slot of a process (OTPHUB_MAX_CONNECTIONS) for itself.
MAX_WAITERS_PER_ACTIVATION = 4
# SQLite: change rows older than this are deleted (every process read them long ago).
KEEP_ROWS_SECONDS = 600.0


class Watch:
    """One registration on an activation, woken by its next change.

    A waiting request costs its connection and this: no future, no task of its own. Its
    wait is the request's own task reading ``receive`` (which returns only when the client
    goes away) under a timeout; a change wakes it by moving that timeout to now."""

    __slots__ = ("_timeout", "gone", "woken")

    def __init__(self) -> None:
        self.woken = False  # a change was announced since the registration: look again
        self.gone = False  # the client went away: nobody reads the answer, stop
        self._timeout: asyncio.Timeout | None = None

    def wake(self) -> None:
        if self.woken:
            return
        self.woken = True
        # An expiring timeout (its own deadline fired, the wait not yet over) cannot be
        # moved, and needs not be: the wait ends anyway and finds ``woken``.
        if self._timeout is not None and not self._timeout.expired():
            self._timeout.reschedule(asyncio.get_running_loop().time())

    async def wait(self, seconds: float, *, receive: Receive | None = None) -> bool:
        """``True`` when woken (look again); ``False`` after ``seconds``, or at once when
        the client went away (``gone`` is then set). ``receive``: the request's ASGI
        receive, through which the server says that the client went away."""
        if self.woken or self.gone or seconds <= 0:
            return self.woken
        try:
            async with asyncio.timeout(seconds) as timeout:
                self._timeout = timeout
                if receive is None:
                    await asyncio.get_running_loop().create_future()  # only the timeout ends it
                else:
                    await _until_disconnect(receive)
                    self.gone = True
        except TimeoutError:
            pass
        finally:
            self._timeout = None
        return self.woken


async def _until_disconnect(receive: Receive) -> None:
    # The request's body was read before any wait, so what comes now is an empty
    # ``http.request`` (a GET's) at most, then ``http.disconnect`` when the client goes (the
    # server's only way to say so: a ``send`` to a closed connection is dropped silently).
    # A server that fails here counts as gone: the answer is what it is now.
    try:
        while (await receive()).get("type") != "http.disconnect":
            pass
    except Exception:
        return


class Waiters:
    """This process's waiters, by activation id."""

    def __init__(self) -> None:
        self._by_id: dict[int, set[Watch]] = {}
        self._someone: asyncio.Event | None = None  # set while anyone waits (SQLite's reader)

    def __len__(self) -> int:
        return sum(len(watches) for watches in self._by_id.values())

    def count(self, activation_id: int) -> int:
        return len(self._by_id.get(activation_id, ()))

    def add(self, activation_id: int) -> Watch:
        watch = Watch()
        self._by_id.setdefault(activation_id, set()).add(watch)
        self.someone().set()
        return watch

    def discard(self, activation_id: int, watch: Watch) -> None:
        watches = self._by_id.get(activation_id)
        if watches is None:
            return
        watches.discard(watch)
        if not watches:
            del self._by_id[activation_id]
            if not self._by_id:
                self.someone().clear()

    def wake(self, activation_id: int) -> None:
        for watch in self._by_id.pop(activation_id, ()):
            watch.wake()
        if not self._by_id:
            self.someone().clear()

    def wake_all(self) -> None:
        for activation_id in list(self._by_id):
            self.wake(activation_id)

    def someone(self) -> asyncio.Event:
        if self._someone is None:  # created lazily: it belongs to the loop that waits
            self._someone = asyncio.Event()
        return self._someone

    def ids(self) -> set[int]:
        return set(self._by_id)


def crowded(rt: Runtime, activation_id: int) -> bool:
    """Whether the activation has its most waiting requests in this process already."""
    return waiters(rt).count(activation_id) >= MAX_WAITERS_PER_ACTIVATION


def waiters(rt: Runtime) -> Waiters:
    found = rt.extensions.get("change_waiters")
    if found is None:
        found = rt.extensions["change_waiters"] = Waiters()
    assert isinstance(found, Waiters)
    return found


async def announce(rt: Runtime, conn: Conn, activation_id: int) -> None:
    """Call inside the write transaction of any change to an activation (state, code, SMS):
    after commit, the waiters on that activation in every process of the deployment wake."""
    await feed.announce(
        conn, is_sqlite=rt.db.is_sqlite, activation_id=activation_id, now=rt.clock.now()
    )
    feed.after_commit(conn, lambda: _wake_after_commit(rt, activation_id))


def _wake_after_commit(rt: Runtime, activation_id: int) -> None:
    # Runs after the commit, inside the caller's ``write()``: whatever goes wrong here must
    # not turn a committed change into a failure for the caller (an agent would resend an
    # SMS that is stored). Waiters look again at their next turn anyway.
    try:
        waiters(rt).wake(activation_id)
    except Exception:
        log.exception("change_wake_failure", activation_id=activation_id)


class _Registration:
    """``async with watch(...)``: a plain class rather than a generator-based context
    manager, whose suspended generator would stay on every waiting request's stack."""

    __slots__ = ("_activation_id", "_here", "_watch")

    def __init__(self, here: Waiters, activation_id: int) -> None:
        self._here = here
        self._activation_id = activation_id
        self._watch = here.add(activation_id)

    async def __aenter__(self) -> Watch:
        return self._watch

    async def __aexit__(self, *_exc: object) -> None:
        self._here.discard(self._activation_id, self._watch)


def watch(rt: Runtime, activation_id: int) -> _Registration:
    """Register for the next change of the activation, then read it, then ``wait``: a
    change committed after the registration wakes it even if it came before the wait."""
    return _Registration(waiters(rt), activation_id)


async def wait_change(rt: Runtime, activation_id: int, timeout: float) -> bool:  # noqa: ASYNC109
    """Until a change of that activation is announced (True; may be spurious: re-read and
    compare) or ``timeout`` seconds pass (False). Holds no database connection."""
    async with watch(rt, activation_id) as watching:
        return await watching.wait(timeout)


# ---------------------------------------------------------------- the feed's reader


async def follow(rt: Runtime) -> None:
    """Wake this process's waiters on the changes that other processes commit, until
    cancelled (the app's worker: ``workers/change_feed.py``)."""
    here = waiters(rt)
    if isinstance(rt.db, PostgresDatabase):
        await feed.listen(rt.db, on_change=here.wake, on_connected=here.wake_all)
        return
    await _follow_rows(rt, here)


async def _follow_rows(rt: Runtime, here: Waiters) -> None:
    last = await feed.latest(rt.db)
    # (monotonic time, the newest row's id then), one a minute: the rows up to that id are
    # deleted KEEP_ROWS_SECONDS later, by whichever process gets there first.
    marks: list[tuple[float, int]] = [(time.monotonic(), last)]
    while True:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    await here.someone().wait()
            if here.someone().is_set():
                last = await _read_rows(rt, here, last)
            now = time.monotonic()
            if now - marks[-1][0] >= 60:
                marks.append((now, await feed.latest(rt.db)))
            if len(marks) > 1 and now - marks[0][0] >= KEEP_ROWS_SECONDS:
                _, up_to = marks.pop(0)
                await feed.prune(rt.db, up_to=up_to)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("change_feed_failure")
            await asyncio.sleep(1.0)
        await asyncio.sleep(SQLITE_POLL)


async def _read_rows(rt: Runtime, here: Waiters, last: int) -> int:
    """Wake the waiters of the change rows past ``last``; returns the new ``last``."""
    rows = await feed.after(rt.db, last=last, limit=SQLITE_BATCH)
    if len(rows) == SQLITE_BATCH:
        # Far behind (nobody waited for a while): read where the feed is now, then everyone
        # looks again (a change up to there is visible to their next read).
        newest = await feed.latest(rt.db)
        here.wake_all()
        return newest
    for _row, activation_id in rows:
        here.wake(activation_id)
    return rows[-1][0] if rows else last
