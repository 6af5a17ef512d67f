"""``OTPHubClient`` and ``AsyncOTPHubClient`` against the live server's API v1 and event
stream, on SQLite and PostgreSQL: purchase with an Idempotency-Key, a code pushed by the
provider while ``wait_for_code`` listens to the stream, another SMS, finish and cancel,
the stream resumed from an event id, webhooks, and refusals as the protocol's exceptions."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from otphub.client import (
    ActivationCancelled,
    AsyncOTPHubClient,
    BadKey,
    EarlyCancelDenied,
    IdempotencyKeyReused,
    NoActivation,
    NoBalance,
    NoNumbers,
    OTPHubClient,
    ProtocolError,
    State,
    WaitTimeout,
    WrongMaxPrice,
)
from tests.support import Hub, Seller


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"webhook_allow_private": True}  # the webhooks registered here are on 127.0.0.1


def push_later(hub: Hub, seller: Seller, phone: str, text: str, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, lambda: hub.push_sms(seller, phone, text))
    timer.start()
    return timer


def test_buy_wait_for_code_finish(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50")
    with OTPHubClient(hub.url, hub.customer("10.00")) as api:
        assert api.balance().amount == Decimal("10.00")
        assert [(o.service, o.country, o.price, o.count) for o in api.offers(service="tg")] == [
            ("tg", 0, Decimal("0.5"), 2)
        ]
        bought = api.buy("tg", 0, idempotency_key="order-1")
        assert (bought.state, bought.price, bought.currency) == (
            State.WAITING,
            Decimal("0.5"),
            "USD",
        )
        # the same key and body: the first purchase again, nothing bought
        assert api.buy("tg", 0, idempotency_key="order-1").id == bought.id
        with pytest.raises(IdempotencyKeyReused):
            api.buy("tg", 2, idempotency_key="order-1")
        assert api.balance().amount == Decimal("9.50")
        assert [a.id for a in api.list()] == [bought.id]
        assert api.ready(bought.id).state is State.WAITING

        pusher = push_later(hub, seller, bought.phone, "Your code: 48213", 0.5)
        assert api.wait_for_code(bought.id, timeout=30) == "48213"
        pusher.join()
        assert api.get(bought.id).code == "48213"

        assert api.retry(bought.id).state is State.RETRY
        pusher = push_later(hub, seller, bought.phone, "Telegram code 991-204", 0.3)
        assert api.wait_for_code(bought.id, timeout=30) == "991204"  # not the old code
        pusher.join()
        assert [(m.text, m.code) for m in api.sms(bought.id)] == [
            ("Your code: 48213", "48213"),
            ("Telegram code 991-204", "991204"),
        ]
        finished = api.finish(bought.id)
        assert finished.state is State.FINISHED and finished.ended
        assert api.balance().amount == Decimal("9.50")
        assert api.list() == [] and [a.id for a in api.list(state="ended")] == [bought.id]
        # ended: the stream gives its final state and closes
        events = list(api.events(bought.id))
        assert [e.kind for e in events] == ["sms", "sms", "state"]
        last = events[-1].activation
        assert last is not None and last.state is State.FINISHED


def test_events_resume_from_an_event_id(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    with OTPHubClient(hub.url, hub.customer("10.00")) as api:
        bought = api.buy("tg")
        stream = api.events(bought.id)
        first = next(stream)
        assert first.kind == "state" and first.activation is not None
        assert first.activation.state is State.WAITING
        stream.close()  # the client goes away
        assert hub.push_sms(seller, bought.phone, "Your code: 77120").status_code == 200
        # back with the last id it saw: only what it missed
        resumed = api.events(bought.id, last_event_id=first.id)
        sms = next(resumed)
        assert sms.kind == "sms" and sms.sms is not None and sms.sms.code == "77120"
        state = next(resumed)
        assert state.activation is not None and state.activation.code == "77120"
        api.finish(bought.id)
        final = next(resumed)
        assert final.activation is not None and final.activation.state is State.FINISHED
        assert list(resumed) == []  # the server closed the stream


def test_async_buy_wait_for_code_cancel(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50")
    key = hub.customer("10.00")

    async def flow() -> None:
        async with AsyncOTPHubClient(hub.url + "/api/v1", key) as api:
            bought = await api.buy("tg")
            pusher = push_later(hub, seller, bought.phone, "G-123456 is your code", 0.5)
            assert await api.wait_for_code(bought.id, timeout=30) == "123456"
            await asyncio.to_thread(pusher.join)
            assert (await api.finish(bought.id)).state is State.FINISHED

            other = await api.buy("tg")
            with pytest.raises(EarlyCancelDenied):
                await api.cancel(other.id)
            hub.clock.advance(121)
            assert (await api.cancel(other.id)).state is State.CANCELLED
            with pytest.raises(ActivationCancelled):
                await api.wait_for_code(other.id, timeout=10)
            kinds = [
                (e.kind, e.activation and e.activation.state) async for e in api.events(other.id)
            ]
            assert kinds == [("state", State.CANCELLED)]
            assert (await api.balance()).amount == Decimal("9.50")

    asyncio.run(flow())


def test_wait_for_code_times_out(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    with OTPHubClient(hub.url, key) as api:
        bought = api.buy("tg")
        with pytest.raises(WaitTimeout):
            api.wait_for_code(bought.id, timeout=1.5)

    async def flow() -> None:
        async with AsyncOTPHubClient(hub.url, key) as api:
            with pytest.raises(WaitTimeout):
                await api.wait_for_code(bought.id, timeout=1.5)

    asyncio.run(flow())


def test_refusals(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    with OTPHubClient(hub.url, hub.customer("10.00")) as api:
        with pytest.raises(BadKey):
            OTPHubClient(hub.url, "ohc_no-such-key").balance()
        with pytest.raises(NoNumbers):
            api.buy("wa")
        with pytest.raises(WrongMaxPrice) as too_cheap:
            api.buy("tg", max_price="0.10")
        assert too_cheap.value.min_price == Decimal("0.5")
        with pytest.raises(NoBalance):
            OTPHubClient(hub.url, hub.customer("0.10")).buy("tg")
        with pytest.raises(NoActivation):
            api.get(987654321)
        mine = api.buy("tg")
        stranger = OTPHubClient(hub.url, hub.customer("10.00"))
        with pytest.raises(NoActivation):  # another customer's: as if it did not exist
            stranger.get(mine.id)
        with pytest.raises(NoActivation):
            next(stranger.events(mine.id))


def test_webhooks(hub: Hub) -> None:
    key = hub.customer("10.00")
    with OTPHubClient(hub.url, key) as api:
        assert api.webhooks() == []
        added = api.add_webhook("http://127.0.0.1:9/hooks/otp")
        assert added.url == "http://127.0.0.1:9/hooks/otp" and len(added.secret) >= 16
        assert [(w.id, w.url) for w in api.webhooks()] == [(added.id, added.url)]
        api.remove_webhook(added.id)
        assert api.webhooks() == []
        with pytest.raises(ProtocolError):  # removed already
            api.remove_webhook(added.id)
