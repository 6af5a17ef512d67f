"""``otphub.client``'s protocol clients (sync and async) against the live server, on
SQLite and PostgreSQL: purchase, a code pushed by the provider while ``wait_for_code``
long-polls, finish and cancel, every error word the server can be made to say, and the
reference actions read into their typed results."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import httpx
import pytest

from otphub.client import (
    ActivationCancelled,
    AsyncSmsActivateClient,
    BadKey,
    BadService,
    BadStatus,
    Banned,
    ChannelsLimit,
    EarlyCancelDenied,
    NoActivation,
    NoBalance,
    NoKey,
    NoNumbers,
    OrderAlreadyExists,
    ProtocolError,
    SmsActivateClient,
    State,
    WaitTimeout,
    WrongMaxPrice,
)
from otphub.services import accounts
from tests.support import Hub, Seller


class Sent:
    """The getStatus requests a client sent (an httpx event hook): their ``wait``."""

    def __init__(self) -> None:
        self.waits: list[str | None] = []

    def __call__(self, request: httpx.Request) -> None:
        if request.url.params.get("action") == "getStatus":
            self.waits.append(request.url.params.get("wait"))

    async def hook(self, request: httpx.Request) -> None:
        self(request)


def long_polled_once(sent: Sent) -> bool:
    """One getStatus with a wait of about the whole timeout (30 s), answered with the code."""
    return len(sent.waits) == 1 and 28 <= int(sent.waits[0] or 0) <= 30


def push_later(hub: Hub, seller: Seller, phone: str, text: str, delay: float) -> threading.Timer:
    """Push an SMS from the provider in ``delay`` seconds (while the client waits)."""
    timer = threading.Timer(delay, lambda: hub.push_sms(seller, phone, text))
    timer.start()
    return timer


def test_buy_wait_for_code_finish(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50")
    key = hub.customer("10.00")
    sent = Sent()
    # The base URL with or without the handler's path.
    with (
        httpx.Client(event_hooks={"request": [sent]}) as http,
        SmsActivateClient(hub.url, key, http=http) as api,
        SmsActivateClient(hub.url + "/stubs/handler_api.php", key) as same,
    ):
        assert api.get_balance() == Decimal("10.00")
        assert same.get_balance() == Decimal("10.00")
        number = api.get_number("tg", 0)
        assert number.phone in {"79000000001", "79000000002"}
        assert api.get_balance() == Decimal("9.50")
        status = api.get_status(number.activation_id)
        assert (status.state, status.code, status.waiting) == (State.WAITING, None, True)
        assert api.ready(number.activation_id) == "ACCESS_READY"

        sent.waits.clear()
        pusher = push_later(hub, seller, number.phone, "Your code: 48213", 0.5)
        assert api.wait_for_code(number.activation_id, timeout=30, interval=30) == "48213"
        pusher.join()
        # one request, held by the server until the code came: the long-poll path
        assert long_polled_once(sent)

        assert api.get_full_sms(number.activation_id).text == "Your code: 48213"
        v2 = api.get_status_v2(number.activation_id)
        assert v2.sms is not None and v2.sms.code == "48213"
        # another SMS on the same number: the old code is not "the" code any more
        assert api.retry(number.activation_id) == "ACCESS_RETRY_GET"
        status = api.get_status(number.activation_id)
        assert (status.state, status.code) == (State.RETRY, "48213")
        sent.waits.clear()
        pusher = push_later(hub, seller, number.phone, "Telegram code 991-204", 0.3)
        assert api.wait_for_code(number.activation_id, timeout=30, interval=30) == "991204"
        pusher.join()
        assert long_polled_once(sent)

        assert api.finish(number.activation_id) == "ACCESS_ACTIVATION"
        assert api.get_status(number.activation_id).state is State.CANCELLED
        assert api.get_balance() == Decimal("9.50")
        # STATUS_CANCEL: wait_for_code cannot give a code any more
        with pytest.raises(ActivationCancelled):
            api.wait_for_code(number.activation_id, timeout=5)
        history = api.get_history()
        assert [(h.id, h.status, h.cost) for h in history] == [
            (number.activation_id, "6", Decimal("0.5"))
        ]


def test_async_buy_wait_for_code_finish(hub: Hub) -> None:
    seller = hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")
    sent = Sent()

    async def flow() -> None:
        http = httpx.AsyncClient(event_hooks={"request": [sent.hook]})
        async with AsyncSmsActivateClient(hub.url, key, http=http) as api:
            assert await api.get_balance() == Decimal("10.00")
            bought = await api.get_number_v2("tg", 0, order_id="order-1")
            assert (bought.phone, bought.cost, bought.currency) == (
                "79000000001", Decimal("0.5"), 840,
            )  # fmt: skip
            assert bought.operator == "mts"
            with pytest.raises(OrderAlreadyExists):
                await api.get_number_v2("tg", 0, order_id="order-1")
            active = await api.get_active_activations()
            assert [(a.activation_id, a.status, a.codes) for a in active] == [
                (bought.activation_id, "4", ())
            ]
            pusher = push_later(hub, seller, bought.phone, "G-123456 is your code", 0.5)
            code = await api.wait_for_code(bought.activation_id, timeout=30, interval=30)
            assert code == "123456"
            await asyncio.to_thread(pusher.join)
            assert long_polled_once(sent)  # one request, held: the long-poll path
            active = await api.get_active_activations()
            assert [(a.status, a.codes) for a in active] == [("2", ("123456",))]
            assert await api.finish(bought.activation_id) == "ACCESS_ACTIVATION"
            assert await api.get_active_activations() == []  # NO_ACTIVATIONS: empty
            assert await api.get_balance() == Decimal("9.50")
        await http.aclose()

    asyncio.run(flow())


def test_cancel_and_wait_on_a_cancelled_activation(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    with SmsActivateClient(hub.url, hub.customer("10.00")) as api:
        number = api.get_number("tg")
        with pytest.raises(EarlyCancelDenied) as refused:
            api.cancel(number.activation_id)
        assert refused.value.word == "EARLY_CANCEL_DENIED"
        with pytest.raises(BadStatus):
            api.finish(number.activation_id)  # no code yet
        hub.clock.advance(121)
        assert api.cancel(number.activation_id) == "ACCESS_CANCEL"
        assert api.cancel(number.activation_id) == "ACCESS_CANCEL"  # no second refund
        assert api.get_balance() == Decimal("10.00")
        assert api.get_full_sms(number.activation_id).state is State.CANCELLED
        assert api.get_status_v2(number.activation_id).cancelled
        with pytest.raises(ActivationCancelled) as ended:
            api.wait_for_code(number.activation_id, timeout=5)
        assert ended.value.activation_id == number.activation_id


def test_wait_for_code_times_out(hub: Hub) -> None:
    hub.stocked(count=1)
    with SmsActivateClient(hub.url, hub.customer("10.00")) as api:
        number = api.get_number("tg")
        with pytest.raises(WaitTimeout) as late:
            api.wait_for_code(number.activation_id, timeout=2.5, interval=0.5)
        assert isinstance(late.value, TimeoutError)
        assert api.get_status(number.activation_id).state is State.WAITING


def test_error_words_are_exceptions(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    customer_id, key = hub.customer_id("10.00")
    with SmsActivateClient(hub.url, key) as api:
        with pytest.raises(BadKey):
            SmsActivateClient(hub.url, "ohc_no-such-key").get_balance()
        with pytest.raises(NoKey):
            SmsActivateClient(hub.url, "").get_balance()
        with pytest.raises(BadService):
            api.get_number("nosuchsvc")
        with pytest.raises(NoNumbers):
            api.get_number("wa")
        with pytest.raises(WrongMaxPrice) as too_cheap:
            api.get_number("tg", max_price=Decimal("0.10"))
        assert too_cheap.value.min_price == Decimal("0.50")
        with pytest.raises(NoBalance):
            SmsActivateClient(hub.url, hub.customer("0.49")).get_number("tg")
        with pytest.raises(NoActivation):
            api.get_status(987654321)
        with pytest.raises(NoActivation):
            api.finish(987654321)
        with pytest.raises(BadStatus):
            api.set_status(api.get_number("tg").activation_id, 5)  # no such status
        # every refusal is a ProtocolError with its word
        with pytest.raises(ProtocolError) as any_refusal:
            api.get_number("tg")
        assert any_refusal.value.name == "NO_NUMBERS"

        hub.call(accounts.set_limits(hub.rt, customer_id=customer_id, max_live=1))
        hub.stocked(count=1, first_phone=79000000501)
        with pytest.raises(ChannelsLimit):
            api.get_number("tg")
        hub.call(
            accounts.set_limits(
                hub.rt, customer_id=customer_id, banned_until=hub.clock.now() + 3600
            )
        )
        with pytest.raises(Banned) as banned:
            api.get_balance()
        assert banned.value.until is not None and banned.value.until.count("-") == 4


def test_async_error_words(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")

    async def flow() -> None:
        async with AsyncSmsActivateClient(hub.url, key) as api:
            with pytest.raises(NoNumbers):
                await api.get_number("wa")
            number = await api.get_number("tg")
            with pytest.raises(EarlyCancelDenied):
                await api.cancel(number.activation_id)
            with pytest.raises(NoActivation):
                await api.get_status(number.activation_id + 1000)
        async with AsyncSmsActivateClient(hub.url, "ohc_no-such-key") as stranger:
            with pytest.raises(BadKey):
                await stranger.get_balance()

    asyncio.run(flow())


def test_reference_actions(hub: Hub) -> None:
    hub.stocked(count=3, service="tg", country=0, price="0.50", operator="mts")
    hub.stocked(count=2, service="tg", country=0, price="0.40", first_phone=79000000101)
    hub.stocked(count=1, service="wa", country=2, price="0.65", first_phone=77000000001)
    with SmsActivateClient(hub.url, hub.customer("1.00")) as api:
        prices = api.get_prices()
        assert prices[0]["tg"].cost == Decimal("0.4")
        assert (prices[0]["tg"].count, prices[0]["tg"].physical_count) == (5, 5)
        assert prices[2]["wa"].cost == Decimal("0.65")
        assert api.get_prices(service="wa", country=0) == {}
        countries = api.get_countries()
        assert countries[0].eng == "Russia" and countries[0].visible
        services = api.get_services_list()
        assert any(s.code == "tg" and s.name == "Telegram" for s in services)
        assert {s.code for s in api.get_services_list(country=2)} == {"wa"}
        assert "mts" in api.get_operators(country=0)[0]
        assert api.get_numbers_status(country=0)["tg"] == 5
        top = api.get_top_countries_by_service("tg")
        assert [(t.country, t.count, t.price) for t in top] == [(0, 5, Decimal("0.4"))]
        assert api.get_active_activations() == []
        assert api.get_history() == []


@pytest.mark.parametrize("dialect", ["grizzly", "herosms"])
def test_the_dialects_read_the_same(hub: Hub, dialect: str) -> None:
    """A customer whose answers come in another dialect's shapes (herosms: refusals as
    HTTP statuses with JSON) gets the same results and exceptions."""
    seller = hub.stocked(count=1, price="0.50")
    created = hub.call(accounts.add_customer(hub.rt, name="d", balance=hub.money("10.00"),
                                             dialect=dialect))  # fmt: skip
    poor = hub.call(accounts.add_customer(hub.rt, name="p", balance=hub.money("0.10"),
                                          dialect=dialect))  # fmt: skip
    with SmsActivateClient(hub.url, created.api_key) as api:
        assert api.get_active_activations() == []
        assert any(s.code == "tg" for s in api.get_services_list())
        with pytest.raises(NoNumbers):
            api.get_number("wa")
        with pytest.raises(NoBalance):
            SmsActivateClient(hub.url, poor.api_key).get_number("tg")
        with pytest.raises(WrongMaxPrice):
            api.get_number("tg", max_price="0.10")
        number = api.get_number("tg")
        with pytest.raises(EarlyCancelDenied):
            api.cancel(number.activation_id)
        with pytest.raises(NoActivation):
            api.get_status(number.activation_id + 1000)
        (active,) = api.get_active_activations()
        assert (active.activation_id, active.phone, active.status) == (
            number.activation_id, number.phone, "4",
        )  # fmt: skip
        pusher = push_later(hub, seller, number.phone, "Your code: 60606", 0.3)
        assert api.wait_for_code(number.activation_id, timeout=30, interval=30) == "60606"
        pusher.join()
        assert api.finish(number.activation_id) == "ACCESS_ACTIVATION"
        (entry,) = api.get_history()
        assert (entry.id, entry.status, entry.cost) == (number.activation_id, "6", Decimal("0.5"))
