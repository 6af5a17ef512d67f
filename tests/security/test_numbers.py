"""Numeric parameters are read in bounded time, whatever a client writes.

``maxPrice=1e200000`` once built an integer of 200,000 digits inside the request (a
second of CPU with the event loop blocked; ``1e999990`` took ~27 s) and ``1e999999999``
answered ``ERROR_SQL`` with a traceback in the log. A ceiling beyond any amount is a
ceiling that every offer meets; every other number is a protocol word.
``test_server_process.py`` checks that a real server stays responsive meanwhile.
"""

from __future__ import annotations

import pytest

from tests.fuzz.checks import agent_answer, customer_answer
from tests.support import Hub

HUGE = ("1e200000", "1e999990", "1e999999999", "9" * 1000, "1e" + "9" * 1000)
TINY_OR_NEGATIVE = ("-1e999999999", "1e-999999999", "-" + "9" * 1000, "1e-" + "9" * 1000)


@pytest.mark.parametrize("ceiling", HUGE)
def test_a_ceiling_above_every_amount_buys(hub: Hub, ceiling: str) -> None:
    hub.stocked(count=2, price="0.50")
    key = hub.customer("10.00")
    assert hub.say(key, "getNumber", service="tg", maxPrice=ceiling).startswith("ACCESS_NUMBER:")
    v2 = hub.api(key, "getNumberV2", service="tg", maxPrice=ceiling)
    assert v2.json()["activationCost"] == 0.5
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.00"


@pytest.mark.parametrize("ceiling", TINY_OR_NEGATIVE)
def test_a_ceiling_below_every_amount_buys_nothing(hub: Hub, ceiling: str) -> None:
    hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")
    assert hub.say(key, "getNumber", service="tg", max_price=ceiling) == "WRONG_MAX_PRICE:0.50"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:10.00"


def test_a_ceiling_with_many_digits_is_not_rounded_up(hub: Hub) -> None:
    """0.4999...9 (30 nines) is below 0.50: the 28-digit default context rounded it to
    0.50 before taking the floor, and the number was sold above the customer's ceiling."""
    hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")
    ceiling = "0.49" + "9" * 30
    assert hub.say(key, "getNumber", service="tg", maxPrice=ceiling) == "WRONG_MAX_PRICE:0.50"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:10.00"


# Every other numeric parameter of the customer API, with the values above: each is a
# protocol word at once (these are read as ASCII digits of BIGINT range, or refused).
NUMERIC_PARAMETERS: list[tuple[str, dict[str, str], str]] = [
    ("getStatus", {"id": "{v}"}, "WRONG_ACTIVATION_ID"),
    ("getStatusV2", {"id": "{v}"}, "WRONG_ACTIVATION_ID"),
    ("getFullSms", {"id": "{v}"}, "WRONG_ACTIVATION_ID"),
    ("setStatus", {"id": "{v}", "status": "8"}, "WRONG_ACTIVATION_ID"),
    ("setStatus", {"id": "1", "status": "{v}"}, "BAD_STATUS"),
    ("getNumber", {"service": "tg", "country": "{v}"}, "BAD_COUNTRY"),
    ("getNumber", {"service": "tg", "providerIds": "{v}"}, "NO_NUMBERS"),
    ("getNumber", {"service": "tg", "exceptProviderIds": "1,{v}"}, "NO_NUMBERS"),
    ("getNumber", {"service": "tg", "phoneException": "7{v}"}, "WRONG_EXCEPTION_PHONE"),
    ("getNumber", {"service": "tg", "activationType": "{v}"}, "BAD_ACTION"),
    ("getPrices", {"country": "{v}"}, "BAD_COUNTRY"),
    ("getHistory", {"start": "{v}"}, "WRONG_DATE"),
    ("getHistory", {"end": "{v}"}, "WRONG_DATE"),
    ("getHistory", {"offset": "{v}"}, "WRONG_DATE"),
    ("getHistory", {"limit": "{v}"}, "WRONG_DATE"),
]


def test_every_numeric_parameter_answers_a_word(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")
    for value in (*HUGE, *TINY_OR_NEGATIVE):
        for action, template, expected in NUMERIC_PARAMETERS:
            params = {name: text.replace("{v}", value) for name, text in template.items()}
            answer = hub.api(key, action, **params)
            customer_answer(answer)  # no ERROR_SQL, no trace, a word of the protocol
            assert answer.text == expected, (action, template, value[:20], answer.text)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:10.00"


@pytest.mark.parametrize(
    "number",
    [
        "1e999999999",
        "-1e999999999",
        "1e200000",
        "9" * 4000,  # within Python's 4,300-digit limit for reading an int
        "9" * 60_000,  # beyond it (and seconds of CPU to read, without that limit)
        "-" + "9" * 20,
        '"1e999999999"',
        '"' + "9" * 1000 + '"',
    ],
)
def test_the_supplier_endpoint_refuses_huge_numbers(hub: Hub, number: str) -> None:
    seller = hub.stocked(count=1)
    for field in ("smsId", "phone"):
        # Written by hand: the JSON encoder would not write 1e999999999 as a number.
        values = {"smsId": "1", "phone": "79000000001", field: number}
        raw = (
            f'{{"action":"PUSH_SMS","key":"{seller.key}","smsId":{values["smsId"]},'
            f'"phone":{values["phone"]},"text":"code 12345"}}'
        ).encode()
        answer = hub.http.post(
            "/agent/api/sms", content=raw, headers={"content-type": "application/json"}
        )
        refused = agent_answer(answer)
        assert answer.status_code == 400, (field, refused)
        assert refused["error"] == f"{field} must be a whole number from 0 to 2**63-1", refused
