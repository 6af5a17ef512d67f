"""Webhook deliveries, on SQLite and PostgreSQL: each SMS reaches each of the customer's
URLs once, signed; failures are retried on the schedule and given up after the 8th; a
restart loses nothing; removed URLs get nothing; one URL's backlog holds no other back.

The worker is driven by hand (``deliver_due``) with the hub's manual clock; one test runs
the real worker loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select, update

from otphub.clock import ManualClock
from otphub.db.schema import outbox
from otphub.db.schema import webhooks as webhook_table
from otphub.domain import webhooks as rules
from otphub.services import webhook_delivery, webhooks
from otphub.services.runtime import Runtime
from otphub.workers.webhooks import run_webhooks
from tests.support import Hub, Seller, runtime_for
from tests.webhooks.receiver import Receiver, verify


def add(hub: Hub, customer_id: int, url: str) -> webhooks.NewWebhook:
    return hub.call(webhooks.add(hub.rt, customer_id=customer_id, url=url))


def deliver(hub: Hub, rt: Runtime | None = None, **kwargs: Any) -> int:
    return hub.call(webhook_delivery.deliver_due(rt or hub.rt, **kwargs))


def messages(hub: Hub) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(outbox).where(outbox.c.kind == "webhook").order_by(outbox.c.id)
            )
            return [dict(r._mapping) for r in rows]

    return hub.call(read())


def bought(hub: Hub) -> tuple[Seller, int, str, int, str]:
    """A provider with numbers, and a customer with one live activation: (seller,
    customer id, key, activation id, phone)."""
    seller = hub.stocked()
    customer_id, key = hub.customer_id("10.00")
    activation_id, phone = hub.buy(key)
    return seller, customer_id, key, activation_id, phone


def push(hub: Hub, seller: Seller, phone: str, text: str, sms_id: int) -> None:
    response = hub.push_sms(seller, phone, text, sms_id=sms_id)
    assert response.status_code == 200, response.text


def test_each_sms_reaches_each_url_once_signed(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    first = add(hub, customer_id, receiver.url("hook"))
    second = add(hub, customer_id, receiver.url("hook2"))
    other_id, _ = hub.customer_id("1.00", name="other")
    add(hub, other_id, receiver.url("other"))

    push(hub, seller, phone, "Telegram code: 12345", sms_id=501)
    received_at = hub.clock.now()
    push(hub, seller, phone, "Telegram code: 12345", sms_id=501)  # the provider repeats it
    assert len(messages(hub)) == 2
    hub.clock.advance(3)
    assert deliver(hub) == 2
    assert deliver(hub) == 0

    for path, created in (("hook", first), ("hook2", second)):
        [request] = receiver.at(path)
        assert json.loads(request.body) == {
            "activationId": activation_id,
            "service": "tg",
            "text": "Telegram code: 12345",
            "code": "12345",
            "country": 0,
            "receivedAt": hub.rt.timestamp(received_at),
        }
        assert list(json.loads(request.body)) == [
            "activationId",
            "service",
            "text",
            "code",
            "country",
            "receivedAt",
        ]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == "OTPHub-Webhook/1"
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
        assert verify(created.secret, request.headers["x-otphub-signature"], request.body) == (
            hub.clock.now()
        )
    # Each URL has its own secret: the other's does not verify.
    [request] = receiver.at("hook")
    with pytest.raises(AssertionError):
        verify(second.secret, request.headers["x-otphub-signature"], request.body)
    assert receiver.at("other") == []

    # Another SMS to the same activation (setStatus 3 asked for one): once more per URL.
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    push(hub, seller, phone, "Telegram code: 67890", sms_id=502)
    assert deliver(hub) == 2
    assert [json.loads(r.body)["code"] for r in receiver.at("hook")] == ["12345", "67890"]
    assert [json.loads(r.body)["code"] for r in receiver.at("hook2")] == ["12345", "67890"]
    assert all(m["delivered_at"] is not None and m["attempts"] == 1 for m in messages(hub))
    assert all(m["activation_id"] == activation_id for m in messages(hub))
    assert all(m["provider_id"] is None for m in messages(hub))


def test_an_sms_for_no_live_activation_sends_nothing(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url())
    hub.clock.advance(120)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    push(hub, seller, phone, "Telegram code: 12345", sms_id=7)
    assert messages(hub) == []
    assert deliver(hub) == 0


def test_a_failing_receiver_gets_it_on_retry(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    created = add(hub, customer_id, receiver.url())
    receiver.answer("hook", 500)
    push(hub, seller, phone, "code 4711", sms_id=1)
    assert deliver(hub) == 1
    [message] = messages(hub)
    assert message["delivered_at"] is None and message["last_error"] == "HTTP 500"
    failed_at = hub.clock.now()
    [info] = hub.call(webhooks.list_of(hub.rt, customer_id=customer_id))
    assert (info.last_attempt_at, info.last_error) == (failed_at, "HTTP 500")

    hub.clock.advance(9)  # the second attempt is 10 s (and a little jitter) later
    assert deliver(hub) == 0
    hub.clock.advance(3)
    assert deliver(hub) == 1
    assert deliver(hub) == 0
    [message] = messages(hub)
    assert message["delivered_at"] == hub.clock.now() and message["attempts"] == 2
    first, second = receiver.at("hook")
    assert first.body == second.body
    assert verify(created.secret, second.headers["x-otphub-signature"], second.body) == (
        hub.clock.now()
    )
    [info] = hub.call(webhooks.list_of(hub.rt, customer_id=customer_id))
    assert (info.last_attempt_at, info.last_error) == (hub.clock.now(), None)


@pytest.mark.parametrize("status", [500, 302, 404])
def test_only_2xx_delivers(hub: Hub, receiver: Receiver, status: int) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url())
    receiver.answer("hook", status)
    push(hub, seller, phone, "code 4711", sms_id=1)
    assert deliver(hub) == 1
    [message] = messages(hub)
    assert message["delivered_at"] is None
    assert message["last_error"].startswith(f"HTTP {status}")
    # The redirect was not followed: its target was never asked.
    assert [r.path for r in receiver.requests] == ["hook"]


def test_delivery_survives_a_restart(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    created = add(hub, customer_id, receiver.url())
    receiver.answer("hook", 500)
    push(hub, seller, phone, "code 1111", sms_id=1)
    assert deliver(hub) == 1  # failed: waits for its retry
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    push(hub, seller, phone, "code 2222", sms_id=2)  # stored, never tried
    # The server stops here; a new one (another runtime, its own clock) starts later.
    hub.call(webhook_delivery.close(hub.rt))
    clock = ManualClock(hub.clock.now() + 5)
    restarted = runtime_for(hub.rt.settings.database_url, clock, webhook_allow_private=True)
    hub.call(restarted.start(migrate_schema=False))
    try:
        assert deliver(hub, restarted) == 1  # the one never tried
        clock.advance(60)
        assert deliver(hub, restarted) == 1  # the retry
        assert deliver(hub, restarted) == 0
        hub.call(webhook_delivery.close(restarted))
    finally:
        hub.call(restarted.close())
    codes = [json.loads(r.body)["code"] for r in receiver.at("hook")]
    assert codes == ["1111", "2222", "1111"]
    for request in receiver.at("hook"):
        verify(created.secret, request.headers["x-otphub-signature"], request.body)
    assert all(m["delivered_at"] is not None for m in messages(hub))


def test_a_crash_during_an_attempt_is_retried_after_the_claim(
    hub: Hub, receiver: Receiver
) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url())
    push(hub, seller, phone, "code 1111", sms_id=1)

    async def claim_and_die() -> None:
        from otphub.db import outbox as stored_outbox

        async with hub.rt.db.write() as conn:
            [message] = await stored_outbox.due(conn, now=hub.clock.now(), limit=10)
            assert await stored_outbox.claim(
                conn,
                message_id=message.id,
                attempts=0,
                until=hub.clock.now() + webhook_delivery.CLAIM_FOR,
            )

    hub.call(claim_and_die())
    assert deliver(hub) == 0  # claimed by the process that died
    hub.clock.advance(webhook_delivery.CLAIM_FOR)
    assert deliver(hub) == 1
    assert len(receiver.at("hook")) == 1
    [message] = messages(hub)
    assert message["attempts"] == 2 and message["delivered_at"] is not None


def test_eight_failures_give_it_up(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url())
    receiver.answer("hook", *[503] * 20)
    push(hub, seller, phone, "code 1111", sms_id=1)
    start = hub.clock.now()
    attempt_times = []
    for attempt in range(1, 9):
        if attempt > 1:
            gap = rules.SCHEDULE[attempt - 1] - rules.SCHEDULE[attempt - 2]
            hub.clock.advance(gap - 1)
            assert deliver(hub) == 0, f"attempt {attempt} came early"
            hub.clock.advance(int(gap * rules.JITTER) + 2)
        assert deliver(hub) == 1, f"attempt {attempt} did not come"
        attempt_times.append(hub.clock.now())
    [message] = messages(hub)
    assert message["failed_at"] == hub.clock.now()
    assert message["attempts"] == 8 and message["delivered_at"] is None
    assert message["last_error"] == "HTTP 503"
    assert attempt_times[-1] - start < 2 * 3600
    hub.clock.advance(3 * 3600)
    assert deliver(hub) == 0
    assert len(receiver.at("hook")) == 8
    [info] = hub.call(webhooks.list_of(hub.rt, customer_id=customer_id))
    assert (info.last_attempt_at, info.last_error) == (attempt_times[-1], "HTTP 503")


def test_a_removed_webhook_gets_nothing(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    removed = add(hub, customer_id, receiver.url("gone"))
    kept = add(hub, customer_id, receiver.url("kept"))
    push(hub, seller, phone, "code 1111", sms_id=1)
    hub.call(webhooks.remove(hub.rt, webhook_id=removed.id, customer_id=customer_id))
    assert deliver(hub) == 1
    assert receiver.at("gone") == [] and len(receiver.at("kept")) == 1
    dropped = [m for m in messages(hub) if m["dedupe_key"].startswith(f"webhook:{removed.id}:")]
    assert dropped[0]["failed_at"] is not None
    assert dropped[0]["last_error"] == "the webhook was removed"
    # A later SMS makes no message for it.
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    push(hub, seller, phone, "code 2222", sms_id=2)
    assert len(messages(hub)) == 3
    assert deliver(hub) == 1
    assert receiver.at("gone") == []

    # Removed between the message's writing and its attempt (another process): dropped at
    # the attempt, not sent.
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    push(hub, seller, phone, "code 3333", sms_id=3)

    async def remove_behind_its_back() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(
                update(webhook_table)
                .where(webhook_table.c.id == kept.id)
                .values(removed_at=hub.clock.now())
            )

    hub.call(remove_behind_its_back())
    assert deliver(hub) == 1
    assert len(receiver.at("kept")) == 2
    last = messages(hub)[-1]
    assert last["failed_at"] is not None and last["attempts"] == 1
    assert last["last_error"] == "the webhook was removed"


def test_private_addresses_are_refused_at_delivery_too(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url())  # allowed when registered
    push(hub, seller, phone, "code 1111", sms_id=1)
    allowed = hub.rt.settings
    hub.rt.settings = allowed.model_copy(update={"webhook_allow_private": False})
    assert deliver(hub) == 1
    assert receiver.requests == []
    [message] = messages(hub)
    assert message["delivered_at"] is None
    assert message["last_error"].startswith("refused: the host 127.0.0.1 resolves to 127.0.0.1")
    hub.rt.settings = allowed
    hub.clock.advance(20)
    assert deliver(hub) == 1
    assert len(receiver.at("hook")) == 1


def test_the_request_goes_to_the_address_checked(
    hub: Hub, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once per attempt, by the check; the connection goes to the
    address it returned, with the name in ``Host``: a name that resolves differently a
    moment later (DNS rebinding) cannot move the request elsewhere. ``.test`` names never
    resolve in DNS, so the request arriving proves that nothing resolved it again."""
    looked_up: list[str] = []

    async def resolve(target: rules.Target) -> list[str]:
        looked_up.append(target.host)
        return ["127.0.0.1"] if target.host == "hooks.example.test" else []

    monkeypatch.setattr(webhooks, "resolve", resolve)
    seller, customer_id, key, activation_id, phone = bought(hub)
    created = add(hub, customer_id, f"http://hooks.example.test:{receiver.port}/named?x=1")
    push(hub, seller, phone, "code 1111", sms_id=1)
    assert deliver(hub) == 1
    [request] = receiver.at("named")
    assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
    verify(created.secret, request.headers["x-otphub-signature"], request.body)
    assert looked_up == ["hooks.example.test", "hooks.example.test"]  # add, then the attempt


def test_localhost_is_delivered_when_private_addresses_are_allowed(
    hub: Hub, receiver: Receiver
) -> None:
    # localhost may resolve to ::1 first, where the receiver does not listen: the next
    # address checked is tried.
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, f"http://localhost:{receiver.port}/hook")
    push(hub, seller, phone, "code 1111", sms_id=1)
    assert deliver(hub) == 1
    [request] = receiver.at("hook")
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert messages(hub)[0]["delivered_at"] is not None


def test_one_urls_backlog_holds_no_other_back(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url("busy"))
    for sms_id in range(1, 13):
        push(hub, seller, phone, f"code {sms_id:04d}", sms_id=sms_id)
    other_seller = hub.stocked(first_phone=79100000001)
    other_id, other_key = hub.customer_id("10.00", name="other")
    _, other_phone = hub.buy(other_key)
    add(hub, other_id, receiver.url("quiet"))
    other = other_seller if other_phone.startswith("791") else seller
    push(hub, other, other_phone, "code 9999", sms_id=99)
    # A round of 3 reads windows of 12: the first holds only the busy URL's messages.
    assert deliver(hub, limit=3) == 3
    assert len(receiver.at("busy")) == webhook_delivery.PER_WEBHOOK
    assert len(receiver.at("quiet")) == 1


def test_the_worker_delivers(hub: Hub, receiver: Receiver) -> None:
    seller, customer_id, key, activation_id, phone = bought(hub)
    add(hub, customer_id, receiver.url())

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(run_webhooks(hub.rt))

    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    task = hub.call(start())
    try:
        push(hub, seller, phone, "code 1111", sms_id=1)
        receiver.wait_for(1)
    finally:
        hub.call(stop(task))
    assert "webhook_client" not in hub.rt.extensions  # closed with the worker
    assert json.loads(receiver.at("hook")[0].body)["code"] == "1111"
