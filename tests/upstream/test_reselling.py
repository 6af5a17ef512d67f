"""Reselling from an upstream service, end to end: the test's deployment (``hub``) buys
from a real second OTPHub (``otphub serve`` in a subprocess with its own database and
secret) and resells to its own customer.

After each flow the three ledgers agree to the cent: the customer at the reseller paid the
reseller's price; the reseller owes its upstream provider the upstream's cost; the
reseller's wallet at the upstream paid that cost; the upstream's provider earned its
payout. Both audits are clean (the fixtures check them after every test).

Upstream world (tests/upstream/second.py): an offer for tg in country 0 at 0.40 with a
payout of 0.30, three numbers, and the reseller's account there with 10.00.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from otphub.db.schema import activations
from otphub.domain.supply import RemoteProvider
from otphub.services import (
    inventory,
    outbox,
    reports,
    suppliers,
    upstream_follow,
    upstream_stock,
)
from tests.support import Hub
from tests.upstream.conftest import register
from tests.upstream.fake import FakeUpstream, never
from tests.upstream.second import SecondOtphub

COST = 40  # the upstream's price: what the reseller pays there
PRICE = 50  # the reseller's: 0.40 x 1.25
UPSTREAM_PAYOUT = 30


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"early_cancel": 0}


def connect(hub: Hub, second: SecondOtphub, *, markup_bp: int = 2500) -> RemoteProvider:
    assert second.world is not None
    provider = register(hub, second.handler_url, key=second.world.reseller_key, markup_bp=markup_bp)
    poll(hub)
    return provider


def poll(hub: Hub) -> int:
    hub.clock.advance(60)
    return hub.call(upstream_stock.poll_due(hub.rt))


def follow(hub: Hub) -> None:
    hub.call(upstream_follow.follow_once(hub.rt))


def deliver(hub: Hub) -> None:
    """The outbox worker's pass; every message must be delivered."""
    hub.call(outbox.deliver_due(hub.rt))
    assert hub.call(outbox.undelivered(hub.rt)) == []


def remote_id(hub: Hub, activation_id: int) -> str:
    async def read() -> str:
        async with hub.rt.db.read() as conn:
            found = await conn.execute(
                select(activations.c.remote_id).where(activations.c.id == activation_id)
            )
            return str(found.scalar_one())

    return hub.call(read())


def payable(hub: Hub, provider: RemoteProvider) -> int:
    return hub.call(reports.show_provider(hub.rt, provider_id=provider.id)).provider.payable


def ledgers(hub: Hub, second: SecondOtphub, key: str, provider: RemoteProvider) -> dict[str, Any]:
    return {
        "customer": hub.say(key, "getBalance"),
        "reseller_owes_upstream_provider": payable(hub, provider),
        "reseller_wallet_there": second.reseller_wallet(),
        "upstream_provider_earned": second.provider_payable(),
    }


def customer_of(hub: Hub) -> str:
    return hub.customer("5.00")


def test_buy_code_finish(hub: Hub, second: SecondOtphub) -> None:
    provider = connect(hub, second)
    key = customer_of(hub)
    assert '"tg":{"cost":0.5,"count":3' in hub.say(key, "getPrices", country="0", service="tg")
    activation_id, phone = hub.buy(key, country="0")
    assert phone in second.world.phones  # type: ignore[union-attr]
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert hub.say(key, "setStatus", id=activation_id, status=1) == "ACCESS_READY"
    second.push_sms(phone, "Telegram code: 48213")
    follow(hub)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:48213"
    follow(hub)  # a repeat of the same code changes nothing
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    deliver(hub)
    upstream_id = remote_id(hub, activation_id)
    assert second.say("getStatus", id=upstream_id) == "STATUS_CANCEL"  # finished there
    assert ledgers(hub, second, key, provider) == {
        "customer": "ACCESS_BALANCE:4.50",
        "reseller_owes_upstream_provider": COST,
        "reseller_wallet_there": (1000 - COST, 0),
        "upstream_provider_earned": UPSTREAM_PAYOUT,
    }
    act = hub.call(reports.show_activation(hub.rt, activation_id=activation_id)).activation
    assert (act.price, act.payout) == (PRICE, COST)  # the operator keeps 0.10


def test_buy_then_cancel(hub: Hub, second: SecondOtphub) -> None:
    provider = connect(hub, second)
    key = customer_of(hub)
    activation_id, _ = hub.buy(key, country="0")
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    deliver(hub)
    assert second.say("getStatus", id=remote_id(hub, activation_id)) == "STATUS_CANCEL"
    assert ledgers(hub, second, key, provider) == {
        "customer": "ACCESS_BALANCE:5.00",
        "reseller_owes_upstream_provider": 0,
        "reseller_wallet_there": (1000, 0),
        "upstream_provider_earned": 0,
    }


def test_the_upstream_expires_one_and_the_customer_is_refunded(
    hub: Hub, second: SecondOtphub
) -> None:
    provider = connect(hub, second)
    key = customer_of(hub)
    activation_id, _ = hub.buy(key, country="0")
    assert second.expire_everything() == 1
    follow(hub)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    # The lifecycle tells the upstream (setStatus 8); it has ended there already: done.
    deliver(hub)
    assert ledgers(hub, second, key, provider) == {
        "customer": "ACCESS_BALANCE:5.00",
        "reseller_owes_upstream_provider": 0,
        "reseller_wallet_there": (1000, 0),
        "upstream_provider_earned": 0,
    }


def test_the_upstream_finishes_one_with_a_code_not_seen_yet(hub: Hub, second: SecondOtphub) -> None:
    """The code came and the activation expired there before the follower looked: it was
    paid for there, so the customer gets the code and pays here."""
    provider = connect(hub, second)
    key = customer_of(hub)
    activation_id, phone = hub.buy(key, country="0")
    second.push_sms(phone, "Your code: 7731")
    assert second.expire_everything() == 1
    follow(hub)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert hub.say(key, "getFullSms", id=activation_id) == "FULL_SMS:7731"
    deliver(hub)
    assert ledgers(hub, second, key, provider) == {
        "customer": "ACCESS_BALANCE:4.50",
        "reseller_owes_upstream_provider": COST,
        "reseller_wallet_there": (1000 - COST, 0),
        "upstream_provider_earned": UPSTREAM_PAYOUT,
    }


def test_another_sms_after_retry(hub: Hub, second: SecondOtphub) -> None:
    connect(hub, second)
    key = customer_of(hub)
    activation_id, phone = hub.buy(key, country="0")
    second.push_sms(phone, "Telegram code: 11111")
    follow(hub)
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    # Before the outbox told the upstream, it still shows the old code: not a new SMS.
    follow(hub)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_RETRY:11111"
    deliver(hub)
    second.push_sms(phone, "Telegram code: 22222")
    follow(hub)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:22222"
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    deliver(hub)
    assert second.reseller_wallet() == (1000 - COST, 0)


def test_the_same_code_again_after_retry(hub: Hub, second: SecondOtphub) -> None:
    """Some services send the same code again: once the upstream has said it waits for
    another SMS, the same code is a new SMS."""
    connect(hub, second)
    key = customer_of(hub)
    activation_id, phone = hub.buy(key, country="0")
    second.push_sms(phone, "Telegram code: 11111")
    follow(hub)
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    deliver(hub)
    provider = hub.call(suppliers.remote_providers(hub.rt))[0]
    follower = upstream_follow.Follow(activation_id)
    assert hub.call(upstream_follow.step(hub.rt, provider, follower))  # STATUS_WAIT_RETRY
    second.push_sms(phone, "Telegram code: 11111")
    assert hub.call(upstream_follow.step(hub.rt, provider, follower))
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:11111"
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    deliver(hub)


def test_explicit_offer_is_left_alone_and_the_ledger_owes_the_cost(
    hub: Hub, second: SecondOtphub
) -> None:
    provider = connect(hub, second)
    hub.call(
        inventory.set_offer(
            hub.rt, provider_id=provider.id, service="tg", country_id=0, price=70, payout=70
        )
    )
    poll(hub)
    key = customer_of(hub)
    assert '"cost":0.7' in hub.say(key, "getPrices", country="0", service="tg")
    activation_id, phone = hub.buy(key, country="0")
    second.push_sms(phone, "code 4455")
    follow(hub)
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    deliver(hub)
    assert ledgers(hub, second, key, provider) == {
        "customer": "ACCESS_BALANCE:4.30",
        "reseller_owes_upstream_provider": COST,
        "reseller_wallet_there": (1000 - COST, 0),
        "upstream_provider_earned": UPSTREAM_PAYOUT,
    }


def test_upstream_down_stock_gone_and_purchases_fall_through(
    hub: Hub, second: SecondOtphub
) -> None:
    provider = connect(hub, second)
    local = hub.stocked(count=1, price="0.90", payout="0.80", first_phone=79000000001)
    key = customer_of(hub)
    # Down before a poll saw it: the purchase's call fails, and the local offer sells.
    hub.call(
        suppliers.set_connection(
            hub.rt, provider_id=provider.id, upstream_url="http://127.0.0.1:9/handler_api.php"
        )
    )
    activation_id, phone = hub.buy(key, country="0")
    assert phone == "79000000001"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:4.10"
    # The next poll marks it down: its stock is gone from every answer.
    assert poll(hub) == 0
    prices = hub.say(key, "getPrices", country="0", service="tg")
    assert prices == "{}"  # the one local number is sold
    assert hub.say(key, "getNumber", service="tg", country="0") == "NO_NUMBERS"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:4.10"
    assert second.reseller_wallet() == (1000, 0)
    assert local.id != provider.id and activation_id > 0


def test_balance_too_low_there_stock_gone(hub: Hub, second: SecondOtphub) -> None:
    second.new_world(balance=COST + 10)  # 0.50 there: one number, not two
    provider = connect(hub, second)
    key = customer_of(hub)
    activation_id, _ = hub.buy(key, country="0")
    # The balance there was read again after the purchase: 0.10 < 0.40.
    terms = hub.call(upstream_stock.terms(hub.rt, provider_id=provider.id))[provider.id]
    assert terms.remote_balance == 10
    assert hub.say(key, "getPrices", country="0", service="tg") == "{}"
    assert hub.say(key, "getNumber", service="tg", country="0") == "NO_NUMBERS"
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    deliver(hub)
    assert second.reseller_wallet() == (COST + 10, 0)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:5.00"
    # A poll reads the same low balance: still nothing on sale.
    second.new_world(balance=30)
    hub.call(
        suppliers.set_connection(
            hub.rt,
            provider_id=provider.id,
            upstream_key=second.world.reseller_key,  # type: ignore[union-attr]
        )
    )
    poll(hub)
    assert hub.say(key, "getPrices", country="0", service="tg") == "{}"


@pytest.mark.parametrize("answer", ["ACCESS_NUMBER:1:", "<html>502</html>", "BAD_KEY", never])
def test_garbage_or_timeout_at_purchase_costs_nothing(
    hub: Hub, fake: FakeUpstream, answer: Any
) -> None:
    register(hub, fake.url)
    fake.answers["getBalance"] = "ACCESS_BALANCE:10.00"
    fake.answers["getPrices"] = '{"0":{"tg":{"cost":0.4,"count":5}}}'
    assert poll(hub) == 1
    fake.answers["getNumber"] = answer
    key = customer_of(hub)
    assert hub.say(key, "getNumber", service="tg", country="0") == "NO_NUMBERS"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:5.00"
    assert len(fake.of("getNumber")) == 1
