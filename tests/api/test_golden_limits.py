"""CHANNELS_LIMIT with a deployment cap of one live activation per customer."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from otphub.db.schema import customers
from otphub.services import lifecycle
from tests.api.answers import JSON, word
from tests.api.answers import exact as _exact
from tests.support import Hub


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"max_live_activations": 1}


def buy(hub: Hub, key: str, **params: Any) -> tuple[int, str]:
    body = word(hub, key, "getNumber", **{"service": "tg", **params})
    assert body.startswith("ACCESS_NUMBER:"), body
    _, activation_id, phone = body.split(":")
    return int(activation_id), phone


def set_customer_cap(hub: Hub, customer_id: int, cap: int | None) -> None:
    async def run() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(
                update(customers).where(customers.c.id == customer_id).values(max_live=cap)
            )

    hub.call(run())


def test_channels_limit(hub: Hub) -> None:
    hub.stocked(count=3)
    key = hub.customer("10.00")
    other = hub.customer("10.00")
    buy(hub, key)
    assert word(hub, key, "getNumber", service="tg") == "CHANNELS_LIMIT"
    assert word(hub, key, "getNumberV2", service="tg", orderId="o1") == "CHANNELS_LIMIT"
    assert word(hub, key, "getNumber", service="wa") == "CHANNELS_LIMIT"
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:9.50"
    # The cap is per customer.
    buy(hub, other)
    assert word(hub, other, "getBalance") == "ACCESS_BALANCE:9.50"
    assert _exact(hub.api(key, "getPrices"), JSON) == (
        '{"0":{"tg":{"cost":0.5,"count":1,"physicalCount":1}}}'
    )


def test_finish_frees_the_channel(hub: Hub) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    assert hub.push_sms(seller, phone, "Your code: 48213").status_code == 200
    assert word(hub, key, "getNumber", service="tg") == "CHANNELS_LIMIT"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "getNumber", service="tg") == "CHANNELS_LIMIT"
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert buy(hub, key)[1] == "79000000002"
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:9.00"


def test_cancel_frees_the_channel(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "EARLY_CANCEL_DENIED"
    assert word(hub, key, "getNumber", service="tg") == "CHANNELS_LIMIT"
    hub.clock.advance(120)
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    buy(hub, key)
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:9.50"


def test_expiry_frees_the_channel_once_resolved(hub: Hub) -> None:
    # Three numbers: the customer never gets back a number that expired without a code.
    hub.stocked(count=3)
    key = hub.customer("10.00")
    first, _ = buy(hub, key)
    hub.clock.advance(1200)
    # Resolved by the sweeper (the test deployment runs none: call it).
    assert hub.call(lifecycle.sweep(hub.rt)) == 1
    assert word(hub, key, "getStatus", id=first) == "STATUS_CANCEL"
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:10.00"
    second, _ = buy(hub, key)
    hub.clock.advance(1200)
    # Resolved by a request that touches it.
    assert word(hub, key, "getStatus", id=second) == "STATUS_CANCEL"
    buy(hub, key)
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:9.50"


def test_customer_cap_wins_over_the_deployment_cap(hub: Hub) -> None:
    hub.stocked(count=5)
    wide_id, wide = hub.customer_id("10.00")
    free_id, free = hub.customer_id("10.00")
    set_customer_cap(hub, wide_id, 2)
    set_customer_cap(hub, free_id, 0)  # 0: no cap at all
    buy(hub, wide)
    buy(hub, wide)
    assert word(hub, wide, "getNumber", service="tg") == "CHANNELS_LIMIT"
    assert word(hub, wide, "getBalance") == "ACCESS_BALANCE:9.00"
    buy(hub, free)
    buy(hub, free)
    buy(hub, free)
    assert word(hub, free, "getBalance") == "ACCESS_BALANCE:8.50"
