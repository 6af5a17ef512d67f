"""The cancelled-numbers rule (issue 9, section 3), on SQLite and PostgreSQL.

A number that a customer cancelled for a service (setStatus 8, or expiry without a code:
the state ``cancelled``) is never sold to that customer for that service again, and a
number cancelled OTPHUB_MAX_CANCELS times for a service (by anyone) is retired for it: no
purchase claims it and no price list counts it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from otphub.db import inventory as db_inventory
from otphub.db.schema import numbers, retired_numbers
from tests.support import Hub, Seller

# Cancels are allowed at once: these tests are about what happens after them.
NO_EARLY_CANCEL: dict[str, object] = {"early_cancel": 0}


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return NO_EARLY_CANCEL


def buy_and_cancel(hub: Hub, key: str, service: str = "tg") -> str:
    activation_id, phone = hub.buy(key, service=service)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    return phone


def retired(hub: Hub) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(numbers.c.phone, retired_numbers.c.service)
                .join(numbers, numbers.c.id == retired_numbers.c.number_id)
                .order_by(numbers.c.phone, retired_numbers.c.service)
            )
            return [(str(phone), str(service)) for phone, service in rows]

    return hub.call(read())


def stock_count(hub: Hub, key: str, service: str) -> int:
    found = hub.api(key, "getPrices", service=service, country=0).json()
    return int(found["0"][service]["count"]) if found else 0


def test_a_customer_never_gets_back_a_number_they_cancelled(hub: Hub) -> None:
    """The reported bug: the same customer buying the same service five times in a row after
    cancelling got the same number every time."""
    hub.stocked(count=5, first_phone=79000000001)
    key = hub.customer("10.00")
    phones = [buy_and_cancel(hub, key) for _ in range(5)]
    assert sorted(phones) == [f"7900000000{i}" for i in range(1, 6)], phones
    # Every number of the offer was cancelled by this customer for this service.
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:10.00"


def test_the_rule_is_per_customer_and_per_service(hub: Hub) -> None:
    seller = hub.stocked(count=1, first_phone=79000000001)
    hub.offer(seller, service="wa", price="0.30")
    key = hub.customer("10.00")
    other = hub.customer("10.00", name="other")
    phone = buy_and_cancel(hub, key)
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    # Still the same number for another service, and for another customer.
    assert buy_and_cancel(hub, key, service="wa") == phone
    assert hub.buy(other, service="tg")[1] == phone


def test_expiry_without_a_code_counts_as_a_cancel(hub: Hub) -> None:
    """The state is what counts: an activation that ran out without a code is cancelled
    (and refunded) exactly like one cancelled with setStatus 8."""
    hub.stocked(count=2, first_phone=79000000001)
    key = hub.customer("10.00")
    activation_id, first = hub.buy(key)
    hub.clock.advance(hub.rt.settings.activation_ttl)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    _, second = hub.buy(key)
    assert second != first


def test_a_finished_activation_does_not_keep_the_number_from_its_buyer_elsewhere(
    hub: Hub,
) -> None:
    """Only cancels count: a number finished for one service is sold to the same customer
    for another service, and one cancelled for another service too."""
    seller = hub.stocked(count=1, first_phone=79000000001)
    hub.offer(seller, service="wa", price="0.30")
    hub.offer(seller, service="vk", price="0.30")
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key, service="tg")
    assert hub.push_sms(seller, phone, "code 12345").status_code == 200
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert buy_and_cancel(hub, key, service="wa") == phone
    assert hub.buy(key, service="vk")[1] == phone


def test_a_number_cancelled_max_cancels_times_is_retired_for_the_service(hub: Hub) -> None:
    seller = hub.stocked(count=1, first_phone=79000000001)
    hub.offer(seller, service="wa", price="0.30")
    keys = [hub.customer("10.00", name=f"c{i}") for i in range(5)]
    assert hub.rt.settings.max_cancels == 4  # the default, the agent protocol's rule
    for i in range(3):
        buy_and_cancel(hub, keys[i])
        assert retired(hub) == []
        assert stock_count(hub, keys[4], "tg") == 1
    buy_and_cancel(hub, keys[3])
    assert retired(hub) == [("79000000001", "tg")]
    # Nobody gets it for that service any more, and no price list advertises it ...
    assert hub.say(keys[4], "getNumber", service="tg") == "NO_NUMBERS"
    assert stock_count(hub, keys[4], "tg") == 0
    assert hub.say(keys[4], "getNumbersStatus", country=0) == '{"wa_0":"1"}'
    # ... but it still sells for other services.
    assert stock_count(hub, keys[4], "wa") == 1
    assert hub.buy(keys[4], service="wa")[1] == "79000000001"


@pytest.mark.parametrize(
    "hub_settings",
    [NO_EARLY_CANCEL | {"max_cancels": 2}],
    ids=["max_cancels=2"],
)
def test_max_cancels_is_a_setting(hub: Hub) -> None:
    hub.stocked(count=1, first_phone=79000000001)
    keys = [hub.customer("10.00", name=f"c{i}") for i in range(3)]
    buy_and_cancel(hub, keys[0])
    assert retired(hub) == []
    buy_and_cancel(hub, keys[1])
    assert retired(hub) == [("79000000001", "tg")]
    assert hub.say(keys[2], "getNumber", service="tg") == "NO_NUMBERS"


@pytest.mark.parametrize(
    "hub_settings",
    [NO_EARLY_CANCEL | {"max_cancels": 0}],
    ids=["max_cancels=0"],
)
def test_max_cancels_zero_never_retires(hub: Hub) -> None:
    hub.stocked(count=1, first_phone=79000000001)
    keys = [hub.customer("10.00", name=f"c{i}") for i in range(7)]
    for key in keys[:6]:
        buy_and_cancel(hub, key)
    assert retired(hub) == []
    assert hub.buy(keys[6])[1] == "79000000001"


def test_the_cancel_that_retires_says_so(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """``note_cancel``'s answer is what the lifecycle gets (an agent's number is then
    finished with status 1, "do not offer it for this service again", instead of 4)."""
    hub.stocked(count=1, first_phone=79000000001)
    keys = [hub.customer("10.00", name=f"c{i}") for i in range(5)]
    answers: list[bool] = []
    note_cancel = db_inventory.note_cancel

    async def spy(*args: Any, **kwargs: Any) -> bool:
        answer = await note_cancel(*args, **kwargs)
        answers.append(answer)
        return answer

    monkeypatch.setattr(db_inventory, "note_cancel", spy)
    for key in keys[:4]:
        buy_and_cancel(hub, key)
    assert answers == [False, False, False, True]


def test_retired_numbers_leave_the_operator_count(hub: Hub) -> None:
    """The per-operator count (getNumbersStatus with an operator, getOperators, when the
    stock cache is on) subtracts retired numbers as ``stock`` does."""
    seller = hub.stocked(count=2, first_phone=79000000001, operator="mts")
    keys = [hub.customer("10.00", name=f"c{i}") for i in range(4)]
    for key in keys:
        activation_id, _ = hub.buy(key, service="tg")  # always the lowest id: ...0001
        assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert retired(hub) == [("79000000001", "tg")]

    async def count() -> db_inventory.OperatorCount:
        async with hub.rt.db.read() as conn:
            return await db_inventory.operator_count(conn)

    counted = hub.call(count())
    assert counted.free[(seller.id, 0, "mts")] == 2
    assert counted.spent[(seller.id, 0, "mts", "tg")] == 1


def test_a_live_retired_number_is_not_counted_twice(hub: Hub) -> None:
    """A retired number in a live activation for another service is neither free nor
    spent: the stock of the retired service is still right once it is free again."""
    seller: Seller = hub.stocked(count=2, first_phone=79000000001)
    hub.offer(seller, service="wa", price="0.30")
    keys = [hub.customer("10.00", name=f"c{i}") for i in range(5)]
    for key in keys[:4]:
        activation_id, phone = hub.buy(key, service="tg")
        assert phone == "79000000001"
        assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert stock_count(hub, keys[4], "tg") == 1
    activation_id, phone = hub.buy(keys[4], service="wa")
    assert phone == "79000000001"
    assert stock_count(hub, keys[4], "tg") == 1
    assert stock_count(hub, keys[4], "wa") == 1
    assert hub.say(keys[4], "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert stock_count(hub, keys[4], "tg") == 1
    assert stock_count(hub, keys[4], "wa") == 2
