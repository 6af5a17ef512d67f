"""Answers that depend on the deployment: its currency (decimals, ISO 4217 numeric code) and
its time zone. Two deployments: KWD (3 decimals) in Moscow, JPY (no decimals) in Tokyo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from otphub.services import accounts
from tests.api.answers import document, word
from tests.support import Hub


@dataclass(frozen=True)
class Expected:
    balance: str  # what the customer starts with, as typed
    price: str
    numeric: int
    start: str  # the ManualClock's first second in the deployment's zone
    end: str  # twenty minutes later
    banned: str  # 2026-06-01 07:05:09 UTC, in the deployment's zone
    after_buy: str
    wrong_max_price: str
    level: str  # getPricesV2 key


DEPLOYMENTS = {
    "KWD": Expected(
        balance="10.000",
        price="0.500",
        numeric=414,
        start="2026-05-28 23:26:40",
        end="2026-05-28 23:46:40",
        banned="2026-06-01 10-05-09",
        after_buy="ACCESS_BALANCE:9.500",
        wrong_max_price="WRONG_MAX_PRICE:0.500",
        level="0.500",
    ),
    "JPY": Expected(
        balance="1000",
        price="50",
        numeric=392,
        start="2026-05-29 05:26:40",
        end="2026-05-29 05:46:40",
        banned="2026-06-01 16-05-09",
        after_buy="ACCESS_BALANCE:950",
        wrong_max_price="WRONG_MAX_PRICE:50",
        level="50",
    ),
}
ZONES = {"KWD": "Europe/Moscow", "JPY": "Asia/Tokyo"}


@pytest.fixture(params=sorted(DEPLOYMENTS))
def hub_settings(request: pytest.FixtureRequest) -> dict[str, object]:
    return {"currency": request.param, "time_zone": ZONES[request.param]}


@pytest.fixture
def expected(hub_settings: dict[str, object]) -> Expected:
    return DEPLOYMENTS[str(hub_settings["currency"])]


def test_money_has_the_currencys_decimals(hub: Hub, expected: Expected) -> None:
    hub.stocked(count=2, price=expected.price, payout=None)
    key = hub.customer(expected.balance)
    assert word(hub, key, "getBalance") == f"ACCESS_BALANCE:{expected.balance}"
    assert word(hub, key, "getNumber", service="tg", maxPrice="0") == expected.wrong_max_price
    assert word(hub, key, "getNumber", service="tg").startswith("ACCESS_NUMBER:")
    assert word(hub, key, "getBalance") == expected.after_buy
    assert word(hub, key, "getBalanceAndCashBack") == expected.after_buy
    assert document(hub, key, "getPricesV2") == f'{{"0":{{"tg":{{"{expected.level}":1}}}}}}'
    prices = json.loads(document(hub, key, "getPrices"))
    assert prices == {"0": {"tg": {"cost": float(expected.price), "count": 1, "physicalCount": 1}}}


def test_get_number_v2_currency_and_times(hub: Hub, expected: Expected) -> None:
    hub.stocked(count=1, price=expected.price, payout=None)
    key = hub.customer(expected.balance)
    parsed = json.loads(document(hub, key, "getNumberV2", service="tg"))
    assert parsed == {
        "activationId": parsed["activationId"],
        "phoneNumber": "79000000001",
        "activationCost": float(expected.price),
        "currency": expected.numeric,
        "countryCode": "0",
        "countryPhoneCode": 7,
        "canGetAnotherSms": True,
        "activationTime": expected.start,
        "activationEndTime": expected.end,
        "activationOperator": "mts",
    }
    assert type(parsed["currency"]) is int


def test_sms_time_in_the_deployments_zone(hub: Hub, expected: Expected) -> None:
    seller = hub.stocked(count=1, price=expected.price, payout=None)
    key = hub.customer(expected.balance)
    activation_id, phone = hub.buy(key)
    assert hub.push_sms(seller, phone, "Your code: 48213").status_code == 200
    assert document(hub, key, "getStatusV2", id=activation_id) == (
        f'{{"verificationType":0,"sms":{{"dateTime":"{expected.start}","code":"48213",'
        '"text":"Your code: 48213"},"call":null}'
    )


def test_banned_until_in_the_deployments_zone(hub: Hub, expected: Expected) -> None:
    customer_id, key = hub.customer_id(expected.balance)
    until = int(datetime(2026, 6, 1, 7, 5, 9, tzinfo=UTC).timestamp())
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=until))
    assert word(hub, key, "getBalance") == f"BANNED:'{expected.banned}'"
