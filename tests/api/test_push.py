"""Codes the moment they arrive, on one process: change notifications (announce/wait),
``wait=`` on the status polls, and the event stream. Both databases.

Delays are printed (``-s`` shows them), never asserted beyond "well before the wait ran
out": speed is the bench's business."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from otphub.clock import ManualClock
from otphub.db import changes as feed
from otphub.http import events
from otphub.services import accounts, changes, lifecycle
from tests.api.sse import Stream
from tests.support import Hub, runtime_for, sqlite_copy

WAIT = 10  # seconds a test's long-poll may wait: an answer well before it is "prompt"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=48) as executor:
        yield executor


def poll_later(
    pool: ThreadPoolExecutor, hub: Hub, key: str, action: str, **params: Any
) -> Future[tuple[str, float]]:
    """A status poll sent from another thread: (its answer, the monotonic time it came)."""

    def run() -> tuple[str, float]:
        with httpx.Client(base_url=hub.url, timeout=WAIT + 20) as client:
            answer = client.get(
                "/stubs/handler_api.php",
                params={"api_key": key, "action": action, **params},
            )
            return answer.text, time.monotonic()

    return pool.submit(run)


def waiting(hub: Hub, count: int = 1) -> None:
    """Until ``count`` requests wait on this process (registration is what matters)."""
    deadline = time.monotonic() + 5
    while len(changes.waiters(hub.rt)) < count:
        assert time.monotonic() < deadline, "the request never started waiting"
        time.sleep(0.01)


# ---------------------------------------------------------------- announce / wait


def test_a_committed_change_wakes_the_waiter_and_a_rolled_back_one_wakes_nobody(
    hub: Hub,
) -> None:
    hub.stocked(count=1)
    activation_id, _ = hub.buy(hub.customer())

    async def change(commit: bool) -> bool:
        rt = hub.rt
        async with changes.watch(rt, activation_id) as watching:

            async def write() -> None:
                try:
                    async with rt.db.write() as conn:
                        await changes.announce(rt, conn, activation_id)
                        if not commit:
                            raise RuntimeError("rolled back")
                except RuntimeError:
                    pass

            await write()
            return await watching.wait(0.5)

    assert hub.call(change(commit=True)) is True
    assert hub.call(change(commit=False)) is False
    # wait_change: the contract's one-call form; nothing announced: the timeout.
    assert hub.call(changes.wait_change(hub.rt, activation_id, 0.2)) is False
    assert len(changes.waiters(hub.rt)) == 0


def test_a_waiter_wakes_on_an_sms_ingested_in_the_same_process(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    activation_id, phone = hub.buy(hub.customer())

    async def wait_then_push() -> tuple[bool, str]:
        waiter = asyncio.ensure_future(changes.wait_change(hub.rt, activation_id, 5))
        await asyncio.sleep(0.05)
        pushed = await asyncio.to_thread(hub.push_sms, seller, phone, "Your code 4321")
        return await waiter, pushed.text

    woken, pushed = hub.call(wait_then_push())
    assert woken is True
    assert json.loads(pushed) == {"status": "SUCCESS"}


# ---------------------------------------------------------------- wait= on the polls


def test_get_status_wait_answers_the_code_as_soon_as_the_sms_is_pushed(
    hub: Hub, pool: ThreadPoolExecutor
) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    started = time.monotonic()
    answer = poll_later(pool, hub, key, "getStatus", id=activation_id, wait=WAIT)
    waiting(hub)
    assert not answer.done()
    hub.push_sms(seller, phone, "Your code is 73519")
    pushed = time.monotonic()  # the push's answer comes after its commit
    text, came = answer.result()
    assert text == "STATUS_OK:73519"
    assert came - started < WAIT / 2, "answered only when the wait ran out"
    print(f"\n[{hub.backend}] getStatus wait=: code {1000 * (came - pushed):.1f} ms after the push")
    assert len(changes.waiters(hub.rt)) == 0


def test_get_status_v2_and_get_full_sms_wait_too(hub: Hub, pool: ThreadPoolExecutor) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    v2 = poll_later(pool, hub, key, "getStatusV2", id=activation_id, wait=WAIT)
    full = poll_later(pool, hub, key, "getFullSms", id=activation_id, wait=WAIT)
    waiting(hub, 2)
    hub.push_sms(seller, phone, "Code 55501 for you")
    text, _ = v2.result()
    body = json.loads(text)
    assert body["sms"]["code"] == "55501"
    assert body["sms"]["text"] == "Code 55501 for you"
    assert full.result()[0] == "FULL_SMS:Code 55501 for you"
    # Another SMS after setStatus 3: the wait ends on the second code, not the first.
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    again = poll_later(pool, hub, key, "getStatus", id=activation_id, wait=WAIT)
    waiting(hub)
    hub.push_sms(seller, phone, "Code 66602 for you")
    assert again.result()[0] == "STATUS_OK:66602"


def test_wait_on_an_ended_activation_answers_at_once(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Your code 111222")
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    plain = hub.say(key, "getStatus", id=activation_id)
    started = time.monotonic()
    assert hub.say(key, "getStatus", id=activation_id, wait=60) == plain
    assert hub.say(key, "getFullSms", id=activation_id, wait=60) == "FULL_SMS:Your code 111222"
    assert time.monotonic() - started < 5
    # Refusals do not wait either.
    assert hub.say(key, "getStatus", id=activation_id + 1, wait=60) == "NO_ACTIVATION"


def test_wait_zero_absent_or_malformed_is_the_plain_poll(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer()
    activation_id, _ = hub.buy(key)
    plain = hub.api(key, "getStatus", id=activation_id)
    started = time.monotonic()
    for wait in ("0", "", "abc", "-5", "1.5", "9" * 40):
        answer = hub.api(key, "getStatus", id=activation_id, wait=wait)
        assert (answer.status_code, answer.text, answer.headers.get("content-type")) == (
            plain.status_code,
            plain.text,
            plain.headers.get("content-type"),
        )
    assert time.monotonic() - started < 5


def test_wait_more_than_sixty_is_sixty() -> None:
    from otphub.http.customer_api import wait_seconds

    assert [wait_seconds(v) for v in ("61", "1000000", "60", "1", "0", "x", "-1")] == [
        60,
        60,
        60,
        1,
        0,
        0,
        0,
    ]


def test_an_expiry_resolved_by_the_sweeper_during_a_wait_answers_status_cancel(
    hub: Hub, pool: ThreadPoolExecutor
) -> None:
    hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, _ = hub.buy(key)
    answer = poll_later(pool, hub, key, "getStatus", id=activation_id, wait=WAIT)
    waiting(hub)
    time.sleep(0.3)  # its re-read after registering is done: now it only waits
    hub.clock.advance(1200)
    assert hub.call(lifecycle.sweep(hub.rt)) == 1
    text, _ = answer.result()
    assert text == "STATUS_CANCEL"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"


def test_a_wait_wakes_at_the_deadline_and_resolves_the_activation(
    hub: Hub, pool: ThreadPoolExecutor
) -> None:
    hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, _ = hub.buy(key)
    hub.clock.advance(1199)  # one second left
    started = time.monotonic()
    answer = poll_later(pool, hub, key, "getStatus", id=activation_id, wait=WAIT)
    waiting(hub)
    hub.clock.advance(1)  # nobody sweeps: the waiting request itself must notice
    text, came = answer.result()
    assert text == "STATUS_CANCEL"
    assert came - started < WAIT / 2


def test_waiting_requests_hold_no_database_connection(hub: Hub, pool: ThreadPoolExecutor) -> None:
    most = changes.MAX_WAITERS_PER_ACTIVATION
    hub.stocked(count=10)
    key = hub.customer()
    bought = [hub.buy(key)[0] for _ in range(10)]
    engine_pool: Any = hub.rt.db.engine.pool  # type: ignore[attr-defined]
    before = engine_pool.checkedout()
    # More waiters than either pool has connections (PostgreSQL: 10 hot, 30 for
    # transactions), each re-reading once it registered; as many on each activation as may.
    answers = [
        poll_later(pool, hub, key, "getStatus", id=activation_id, wait=WAIT)
        for activation_id in bought
        for _ in range(most)
    ]
    waiting(hub, 10 * most)
    assert engine_pool.checkedout() <= before
    # Everything else is served meanwhile.
    assert hub.say(key, "getBalance").startswith("ACCESS_BALANCE:")
    assert hub.say(key, "getStatus", id=bought[0]) == "STATUS_WAIT_CODE"
    assert not any(a.done() for a in answers)
    assert hub.say(key, "setStatus", id=bought[0], status=8) == "EARLY_CANCEL_DENIED"
    hub.clock.advance(120)
    for activation_id in bought:
        assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert {a.result()[0] for a in answers} == {"STATUS_CANCEL"}


# ---------------------------------------------------------------- the event stream


def events_path(activation_id: int, key: str | None = None) -> str:
    query = f"?api_key={key}" if key is not None else ""
    return f"/api/v1/activations/{activation_id}/events{query}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_event_stream_sends_the_state_then_sms_and_state_then_closes_when_ended(
    hub: Hub,
) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    stream = Stream(hub.url, events_path(activation_id), bearer(key))
    try:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        first = stream.next()
        assert first is not None and first.kind == "state"
        state = first.json()
        assert (state["id"], state["state"], state["status"]) == (
            activation_id,
            "waiting",
            "STATUS_WAIT_CODE",
        )
        assert stream.quiet(0.3)
        waiting(hub)
        hub.push_sms(seller, phone, "Your code is 24680")
        pushed = time.monotonic()
        sms = stream.next()
        came = time.monotonic()
        assert sms is not None and sms.kind == "sms"
        assert sms.json()["code"] == "24680"
        assert sms.json()["text"] == "Your code is 24680"
        changed = stream.next()
        assert changed is not None and changed.kind == "state"
        assert (changed.json()["state"], changed.json()["code"]) == ("code", "24680")
        print(f"\n[{hub.backend}] event stream: SMS {1000 * (came - pushed):.1f} ms after the push")
        assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
        final = stream.next()
        assert final is not None and final.kind == "state"
        assert final.json()["state"] == "finished"
        assert stream.next() is None  # the server closed the stream
    finally:
        stream.close()


def test_event_stream_new_connection_sends_every_sms_first_and_resumes_with_last_event_id(
    hub: Hub,
) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "First code 1111")
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    hub.push_sms(seller, phone, "Second code 2222")

    stream = Stream(hub.url, events_path(activation_id, key))  # the key as a query parameter
    try:
        got = [stream.next() for _ in range(3)]
        assert [e.kind for e in got if e] == ["sms", "sms", "state"]
        assert [e.json()["code"] for e in got if e] == ["1111", "2222", "2222"]
        first_sms, _, state = got
        assert first_sms is not None and state is not None
        assert stream.quiet(0.3)
    finally:
        stream.close()

    # Resumed after the first SMS: only the second one and the state.
    resumed = Stream(
        hub.url, events_path(activation_id), {**bearer(key), "Last-Event-ID": first_sms.id or ""}
    )
    try:
        got = [resumed.next() for _ in range(2)]
        assert [(e.kind, e.json()["code"]) for e in got if e] == [
            ("sms", "2222"),
            ("state", "2222"),
        ]
        assert resumed.quiet(0.3)
    finally:
        resumed.close()

    # Resumed after everything: nothing until the next change, then only that change.
    caught_up = Stream(
        hub.url, events_path(activation_id), {**bearer(key), "Last-Event-ID": state.id or ""}
    )
    try:
        assert caught_up.quiet(0.5)
        assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
        retry = caught_up.next()
        assert retry is not None and (retry.kind, retry.json()["state"]) == ("state", "retry")
        hub.push_sms(seller, phone, "Third code 3333")
        got = [caught_up.next() for _ in range(2)]
        assert [(e.kind, e.json()["code"]) for e in got if e] == [
            ("sms", "3333"),
            ("state", "3333"),
        ]
    finally:
        caught_up.close()

    # An unreadable Last-Event-ID counts as nothing seen.
    garbled = Stream(hub.url, events_path(activation_id), {**bearer(key), "Last-Event-ID": "x.y"})
    try:
        got = [garbled.next() for _ in range(4)]
        assert [e.kind for e in got if e] == ["sms", "sms", "sms", "state"]
    finally:
        garbled.close()


def test_event_stream_of_an_ended_activation_sends_the_final_state_and_closes(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer()
    activation_id, _ = hub.buy(key)
    hub.clock.advance(120)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    stream = Stream(hub.url, events_path(activation_id), bearer(key))
    try:
        final = stream.next()
        assert final is not None and final.json()["state"] == "cancelled"
        assert stream.next() is None
    finally:
        stream.close()


def test_event_stream_refusals(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer(name="owner")
    other = hub.customer(name="other")
    activation_id, _ = hub.buy(key)
    cases = [
        (events_path(activation_id), {}, 401, "NO_KEY"),
        (events_path(activation_id), bearer("not-a-key"), 401, "BAD_KEY"),
        (events_path(activation_id), bearer(other), 404, "NO_ACTIVATION"),
        (events_path(activation_id + 100), bearer(key), 404, "NO_ACTIVATION"),
    ]
    for path, headers, status, error in cases:
        answer = hub.http.get(path, headers=headers)
        assert answer.status_code == status, (path, answer.text)
        body = answer.json()
        assert body["error"] == error
        assert body["message"]


def test_a_disconnected_stream_drops_its_waiter(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer()
    activation_id, _ = hub.buy(key)
    stream = Stream(hub.url, events_path(activation_id), bearer(key))
    first = stream.next()
    assert first is not None and first.kind == "state"
    waiting(hub)
    assert len(changes.waiters(hub.rt)) == 1
    stream.close()
    deadline = time.monotonic() + 5
    while len(changes.waiters(hub.rt)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(changes.waiters(hub.rt)) == 0


# ---------------------------------------------------------------- the feed between processes


def test_the_feed_wakes_waiters_on_changes_another_process_commits(hub: Hub) -> None:
    """Another runtime on the same database stands for another process: its local waiters
    are its own, so only the feed (NOTIFY, or SQLite's change rows) can carry its changes
    here. A change it rolls back wakes nobody."""
    other = runtime_for(hub.rt.settings.database_url, hub.clock)

    async def scenario() -> tuple[bool, bool]:
        await other.start(migrate_schema=False)
        follower = asyncio.ensure_future(changes.follow(hub.rt))
        try:
            await asyncio.sleep(0.3)  # PostgreSQL: listening by now
            async with changes.watch(hub.rt, 7001) as watching:
                async with other.db.write() as conn:
                    await changes.announce(other, conn, 7001)
                committed = await watching.wait(5)
            async with changes.watch(hub.rt, 7002) as watching:
                with contextlib.suppress(RuntimeError):
                    async with other.db.write() as conn:
                        await changes.announce(other, conn, 7002)
                        raise RuntimeError("rolled back")
                rolled_back = await watching.wait(0.5)
            return committed, rolled_back
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await other.close()

    assert hub.call(scenario()) == (True, False)


def test_sqlite_feed_catches_up_wakes_everyone_when_far_behind_and_prunes(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """SQLite only: on PostgreSQL, NOTIFY keeps no rows to read, catch up on or prune."""
    url = sqlite_copy(sqlite_template, tmp_path)
    writer = runtime_for(url, ManualClock())
    reader = runtime_for(url, ManualClock())

    async def scenario() -> None:
        await writer.start(migrate_schema=False)
        await reader.start(migrate_schema=False)
        try:
            here = changes.waiters(reader)
            for activation_id in (1, 2, 3):
                async with writer.db.write() as conn:
                    await changes.announce(writer, conn, activation_id)
            one, unrelated = here.add(2), here.add(99)
            last = await changes._read_rows(reader, here, 0)
            assert last == 3
            assert one.woken and not unrelated.woken
            # More rows than one read takes: everyone looks again, from the newest row on.
            async with writer.db.write() as conn:
                for _ in range(changes.SQLITE_BATCH):
                    await changes.announce(writer, conn, 5)
            assert await changes._read_rows(reader, here, last) == 3 + changes.SQLITE_BATCH
            assert unrelated.woken
            assert len(here) == 0
            await feed.prune(reader.db, up_to=3)
            rows = await feed.after(reader.db, last=0, limit=10_000)
            assert len(rows) == changes.SQLITE_BATCH
            assert rows[0][0] == 4
        finally:
            await writer.close()
            await reader.close()

    asyncio.run(scenario())


def test_an_idle_event_stream_sends_pings(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "PING_SECONDS", 0.2)
    hub.stocked(count=1)
    key = hub.customer()
    activation_id, _ = hub.buy(key)
    stream = Stream(hub.url, events_path(activation_id), bearer(key))
    try:
        first = stream.next()
        assert first is not None and first.kind == "state"
        pings = [stream.next(), stream.next()]
        assert [p.comment if p else None for p in pings] == [": ping", ": ping"]
        assert "retry: 2000" in stream.body.decode()
    finally:
        stream.close()


def test_event_stream_refuses_a_banned_customer_and_one_over_its_rate(hub: Hub) -> None:
    hub.stocked(count=2)
    banned_id, banned_key = hub.customer_id(name="banned")
    activation_id, _ = hub.buy(banned_key)
    until = hub.clock.now() + 3600
    hub.call(accounts.ban_customer(hub.rt, customer_id=banned_id, until=until))
    answer = hub.http.get(events_path(activation_id), headers=bearer(banned_key))
    assert answer.status_code == 403
    assert answer.json()["error"] == "BANNED"
    assert answer.json()["until"] == hub.rt.timestamp(until)

    limited_id, limited_key = hub.customer_id(name="limited")
    mine, _ = hub.buy(limited_key)
    hub.call(accounts.set_limits(hub.rt, customer_id=limited_id, rate_limit=1))
    # An id of nobody: each answer comes at once (404), but counts towards the rate first.
    gone = events_path(mine + 1000)
    answers = [hub.http.get(gone, headers=bearer(limited_key)) for _ in range(8)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    assert refused[0].json()["error"] == "TOO_MANY_REQUESTS"
    assert float(refused[0].headers["retry-after"]) > 0


def test_a_long_poll_whose_client_went_away_ends_and_drops_its_waiter(hub: Hub) -> None:
    """A ``wait=30`` abandoned after a moment must not hold its task, its waiter and its
    connection slot for the 30 s (seen failing without http/disconnect.py: the waiter
    stayed until the wait ran out)."""
    hub.stocked(count=1)
    key = hub.customer()
    activation_id, _ = hub.buy(key)
    url = httpx.URL(hub.url)
    request = (
        f"GET /stubs/handler_api.php?api_key={key}&action=getStatus&id={activation_id}"
        f"&wait=30 HTTP/1.1\r\nHost: {url.host}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port or 80), timeout=5) as client:
        client.sendall(request)
        waiting(hub)
    gone_at = time.monotonic()
    while len(changes.waiters(hub.rt)) and time.monotonic() < gone_at + 5:
        time.sleep(0.02)
    assert len(changes.waiters(hub.rt)) == 0, "the abandoned long-poll still waits"
    print(f"abandoned long-poll ended {1000 * (time.monotonic() - gone_at):.1f} ms after close")


def test_pings_of_an_idle_event_stream_read_nothing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 idle streams pinging every 15 s must not cost the database 1,300 reads a
    second (seen failing before: each ping re-read the activation and its SMS)."""
    monkeypatch.setattr(events, "PING_SECONDS", 0.1)
    reads: list[str] = []
    for name in ("current", "sms_after"):
        original = getattr(lifecycle, name)

        async def counted(
            *args: Any, _original: Any = original, _name: str = name, **kw: Any
        ) -> Any:
            reads.append(_name)
            return await _original(*args, **kw)

        monkeypatch.setattr(lifecycle, name, counted)
    hub.stocked(count=1)
    key = hub.customer()
    activation_id, _ = hub.buy(key)
    stream = Stream(hub.url, events_path(activation_id), bearer(key))
    try:
        first = stream.next()
        assert first is not None and first.kind == "state"
        before = len(reads)
        pings = [stream.next() for _ in range(4)]
        assert [p.comment if p else None for p in pings] == [": ping"] * 4
        assert len(reads) == before, reads[before:]
    finally:
        stream.close()


def test_waiting_requests_per_activation_are_bounded(hub: Hub, pool: ThreadPoolExecutor) -> None:
    """One key cannot take every connection slot of a process with waits on one cheap
    activation: beyond MAX_WAITERS_PER_ACTIVATION, a wait= answers at once and a stream is
    refused with 429 (holding more costs more activations)."""
    most = changes.MAX_WAITERS_PER_ACTIVATION
    seller = hub.stocked(count=1)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    held = [
        poll_later(pool, hub, key, "getStatus", id=activation_id, wait=WAIT) for _ in range(most)
    ]
    waiting(hub, most)
    extra = hub.say(key, "getStatus", id=activation_id, wait=WAIT)
    assert extra == "STATUS_WAIT_CODE"
    assert not any(answer.done() for answer in held)  # answered while the others wait
    stream = httpx.get(f"{hub.url}{events_path(activation_id)}", headers=bearer(key), timeout=10)
    assert stream.status_code == 429
    assert stream.json()["error"] == "TOO_MANY_REQUESTS"
    assert stream.headers["retry-after"]
    hub.push_sms(seller, phone, "Your code is 73519")
    assert [answer.result()[0] for answer in held] == ["STATUS_OK:73519"] * most
    assert len(changes.waiters(hub.rt)) == 0
