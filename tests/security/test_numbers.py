"""Numeric parameters are read in bounded time, whatever a client writes.

``maxPrice=1e200000`` once built an integer of 200,000 digits inside the request (a
second of CPU with the event loop blocked; ``1e999990`` took ~27 s) and ``1e999999999``
answered ``ERROR_SQL`` with a traceback in the log. A ceiling beyond any amount is a
ceiling that every offer meets; every other number is a protocol word.
``test_server_process.py`` checks that a real server stays responsive meanwhile.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@st.composite
def php_numbers(draw: st.DrawFn) -> tuple[str, Fraction | None]:
    """A number as a client may write it, with exponents small or monstrous, and its exact
    value (``None``: beyond every amount)."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(st.text("0123456789", max_size=25))
    fraction = draw(st.none() | st.text("0123456789", max_size=25))
    if not whole and not fraction:
        whole = "0"
    exponent = draw(
        st.none()
        | st.integers(-40, 40)
        | st.integers(-(10**12), 10**12)
        | st.sampled_from([999990, 999999999, -999999999, 200000])
    )
    spelled = sign + whole + ("" if fraction is None else "." + fraction)
    if exponent is not None:
        spelled += draw(st.sampled_from(["e", "E"])) + str(exponent)
    digits = whole + (fraction or "")
    mantissa = Fraction(int(digits or "0"), 10 ** len(fraction or ""))
    power = exponent or 0
    value: Fraction | None
    if mantissa == 0 or sign == "-":
        value = Fraction(0) if sign != "-" else -mantissa
    elif abs(power) > 1000:
        value = None if power > 0 else Fraction(0)
    else:
        value = mantissa * Fraction(10) ** power
    return spelled, value


@pytest.fixture
def penniless(hub: Hub) -> str:
    """A customer without money, and one number for sale at 0.50: asking for it changes
    nothing, whatever the answer (the examples of one test share this deployment)."""
    hub.stocked(count=1, price="0.50")
    return hub.customer("0.00")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(number=php_numbers())
def test_any_ceiling_decides_as_exact_arithmetic_does(
    hub: Hub, penniless: str, number: tuple[str, Fraction | None]
) -> None:
    """A customer without money asks with any ceiling: a ceiling of at least the price
    (0.50) answers NO_BALANCE, a lower one WRONG_MAX_PRICE, never ERROR_SQL."""
    spelled, value = number
    answer = hub.api(penniless, "getNumber", service="tg", maxPrice=spelled)
    customer_answer(answer)
    affordable = value is None or value >= Fraction(1, 2)
    assert answer.text == ("NO_BALANCE" if affordable else "WRONG_MAX_PRICE:0.50"), spelled
