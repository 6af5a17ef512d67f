from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otphub.domain.errors import InvalidAmount
from otphub.domain.money import MAX_MINOR, currency

USD = currency("USD")
JPY = currency("JPY")
KWD = currency("KWD")


@pytest.mark.parametrize(
    ("text", "minor"),
    [("0.50", 50), ("12.5", 1250), ("100", 10000), ("0.01", 1), (" 3.10 ", 310), ("7.000", 700)],
)
def test_parse_exact_amounts(text: str, minor: int) -> None:
    assert USD.parse(text) == minor


@pytest.mark.parametrize("text", ["0.505", "1.001", "0.009"])
def test_more_decimals_than_the_currency_is_refused_not_rounded(text: str) -> None:
    with pytest.raises(InvalidAmount, match="more decimals"):
        USD.parse(text)


@pytest.mark.parametrize("text", ["", "abc", "1,50", "1e3", "NaN", "Infinity", "--1", "0x10", "1."])
def test_malformed_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidAmount):
        USD.parse(text)


def test_zero_and_negative() -> None:
    with pytest.raises(InvalidAmount):
        USD.parse("0")
    assert USD.parse("0", allow_zero=True) == 0
    with pytest.raises(InvalidAmount):
        USD.parse("-1.00")
    assert USD.parse_signed("-1.25") == -125


def test_huge_amounts_are_refused() -> None:
    with pytest.raises(InvalidAmount):
        USD.parse("99999999999999999")


def test_format_always_has_the_currency_decimals() -> None:
    assert USD.format(10000) == "100.00"
    assert USD.format(0) == "0.00"
    assert USD.format(5) == "0.05"
    assert USD.format(-5) == "-0.05"
    assert JPY.format(150) == "150"
    assert KWD.format(1234) == "1.234"


def test_currency_codes() -> None:
    assert (USD.numeric, USD.decimals) == (840, 2)
    assert currency("rub").numeric == 643
    with pytest.raises(ValueError, match="unknown currency"):
        currency("XXX")


@given(st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR))
def test_format_and_parse_round_trip(minor: int) -> None:
    assert USD.parse_signed(USD.format(minor)) == minor


@given(st.integers(min_value=0, max_value=MAX_MINOR))
def test_json_number_is_exactly_the_decimal(minor: int) -> None:
    # The float handed to the JSON encoder prints back as exactly the decimal amount.
    assert Decimal(repr(USD.json_number(minor))) == Decimal(USD.format(minor))
