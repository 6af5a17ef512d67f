import math
from decimal import Decimal
from fractions import Fraction

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


@pytest.mark.parametrize("text", ["١٠", "١٠.٥٠", "１０", "१०.००", "7٩"])
def test_amounts_are_ascii_digits_only(text: str) -> None:
    # Arabic-Indic, fullwidth, Devanagari: Decimal reads them, the regex's \d took them.
    with pytest.raises(InvalidAmount):
        USD.parse(text)


@pytest.mark.parametrize("text", ["1e999999999", "9" * 10_000, "1" + "0" * 5000 + ".00"])
def test_amounts_of_any_length_are_refused_at_once(text: str) -> None:
    with pytest.raises(InvalidAmount):
        USD.parse(text)


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("0.5", 50),
        (".5", 50),
        ("5.", 500),
        ("+2", 200),
        ("5e-1", 50),
        ("1E3", 100_000),
        ("0.509", 50),  # rounded down: an offer at 0.51 exceeds it
        ("0.009", 0),
        ("0.49" + "9" * 30, 49),  # not rounded up to 0.50 on the way
        ("0." + "0" * 900 + "1", 0),
        ("0" * 900 + "1.25", 125),
        ("1" + "0" * 800 + "e-800", 100),
    ],
)
def test_ceiling_is_the_floor_on_the_currency_grid(text: str, minor: int) -> None:
    assert USD.parse_ceiling(text) == minor


@pytest.mark.parametrize(
    "text",
    ["1e200000", "1e999990", "1e999999999", "9" * 1000, "1e" + "9" * 1000, "1e16", "1e15"],
)
def test_ceiling_above_every_amount_is_max_minor(text: str) -> None:
    assert USD.parse_ceiling(text) == MAX_MINOR
    assert JPY.parse_ceiling(text) == MAX_MINOR


@pytest.mark.parametrize(
    "text",
    ["-1e999999999", "1e-999999999", "1e-" + "9" * 1000, "-1", "-0.01", "0", "0e999999999"],
)
def test_ceiling_below_one_minor_unit_or_negative_is_zero(text: str) -> None:
    assert USD.parse_ceiling(text) == 0


@pytest.mark.parametrize(
    "text", ["", "abc", "0,60", "NaN", "Infinity", "-inf", ".", "e5", "1e", "1_000", "١٢", "0x10"]
)
def test_an_unreadable_ceiling_is_zero(text: str) -> None:
    assert USD.parse_ceiling(text) == 0


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 40
    ),
    st.integers(min_value=-40, max_value=40),
)
def test_ceiling_agrees_with_exact_arithmetic(value: Decimal, exponent: int) -> None:
    text = f"{value}e{exponent}" if "E" not in str(value) else str(value)
    exact = Fraction(Decimal(text))
    expected = 0 if exact < 0 else min(math.floor(exact * 100), MAX_MINOR)
    assert USD.parse_ceiling(text) == expected


@given(st.text(max_size=60))
def test_any_text_is_a_ceiling_within_bounds(text: str) -> None:
    assert 0 <= USD.parse_ceiling(text) <= MAX_MINOR
