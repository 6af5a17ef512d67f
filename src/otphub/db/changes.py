"""The feed of changes to activations, between the processes of a deployment.

- PostgreSQL: ``pg_notify`` in the changing transaction (the server delivers it at commit,
  and only if it commits) to every connection that ``LISTEN``s on the channel; each server
  process keeps one such connection of asyncpg's own (``listen``).
- SQLite: a row in ``activation_changes`` per change, in the changing transaction; the
  processes of the machine read the rows past the last one they saw (``after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from sqlalchemy import bindparam, delete, func, insert, select, text

from otphub.db.engine import Conn, Database, PostgresDatabase, after_commit, run
from otphub.db.schema import activation_changes

__all__ = ["CHANNEL", "after", "after_commit", "announce", "latest", "listen", "prune"]

CHANNEL = "otphub_activation"
_log = structlog.get_logger("otphub.changes")

_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")
_RECORD = insert(activation_changes).values(
    activation_id=bindparam("activation_id"), created_at=bindparam("now")
)
_AFTER = (
    select(activation_changes.c.id, activation_changes.c.activation_id)
    .where(activation_changes.c.id > bindparam("last"))
    .order_by(activation_changes.c.id)
    .limit(bindparam("limit"))
)
_LATEST = select(func.coalesce(func.max(activation_changes.c.id), 0))


async def announce(conn: Conn, *, is_sqlite: bool, activation_id: int, now: int) -> None:
    """Tell the other processes, once this transaction commits, that the activation
    changed."""
    if is_sqlite:
        await run(conn, _RECORD, {"activation_id": activation_id, "now": now})
    else:
        await conn.execute(_NOTIFY, {"payload": str(activation_id)})


# ---------------------------------------------------------------- SQLite's change rows


async def latest(db: Database) -> int:
    """The id of the newest change row (0: none)."""
    async with db.read() as conn:
        return int((await conn.execute(_LATEST)).scalar_one())


async def after(db: Database, *, last: int, limit: int) -> list[tuple[int, int]]:
    """(row id, activation id) of the change rows past ``last``, oldest first: one read
    of the primary key's index."""
    async with db.read() as conn:
        rows = await conn.execute(_AFTER, {"last": last, "limit": limit})
        return [(int(r[0]), int(r[1])) for r in rows]


async def prune(db: Database, *, up_to: int) -> int:
    """Delete the change rows up to id ``up_to`` (every process has long read them)."""
    async with db.write() as conn:
        stale = delete(activation_changes).where(activation_changes.c.id <= up_to)
        done = await conn.execute(stale)
        return int(done.rowcount or 0)


# ---------------------------------------------------------------- PostgreSQL's LISTEN


async def listen(
    db: PostgresDatabase,
    *,
    on_change: Callable[[int], None],
    on_connected: Callable[[], None],
    check_every: float = 10.0,
) -> None:
    """Hold one connection that LISTENs on the channel and call ``on_change(id)`` for each
    notification, until cancelled. ``on_connected`` runs each time the connection is
    (re)opened and listening: notifications sent while it was down are lost, so whoever
    waits must look again. A dropped connection is reopened with a growing pause (up to
    5 s); a silent one is found by a ``SELECT 1`` every ``check_every`` seconds."""

    def notified(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            on_change(int(payload))

    pause = 0.1
    while True:
        conn: Any = None
        try:
            conn = await asyncio.wait_for(asyncpg.connect(db.dsn), timeout=10)
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            conn.add_termination_listener(functools.partial(_settle, lost))
            await conn.add_listener(CHANNEL, notified)
            pause = 0.1
            on_connected()
            while not lost.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(lost), timeout=check_every)
                if not lost.done():
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=check_every)
            _log.warning("change_listener_lost")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.warning("change_listener_failed", error=type(exc).__name__)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.terminate()
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)


def _settle(future: asyncio.Future[None], *_args: object) -> None:
    if not future.done():
        future.set_result(None)
