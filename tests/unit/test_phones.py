import pytest

from otphub.domain import errors
from otphub.domain.phones import normalize_phone, parse_phone_exceptions


def test_phones_are_normalized_to_digits() -> None:
    assert normalize_phone("+7 (958) 412-34-56") == "79584123456"
    for bad in ["12ab", "", "0123456789", "+", "1234", "1" * 16]:
        with pytest.raises(errors.InvalidInput):
            normalize_phone(bad)


def test_phone_exceptions() -> None:
    assert parse_phone_exceptions(None, country_prefix="7") == ()
    assert parse_phone_exceptions("7918,7900111", country_prefix="7") == ("7918", "7900111")
    assert parse_phone_exceptions("44777", country_prefix="44") == ("44777",)
    for bad in ["79", "7918a", "8918", "79181234567", "+7918"]:
        with pytest.raises(errors.WrongExceptionPhone):
            parse_phone_exceptions(bad, country_prefix="7")


@pytest.mark.parametrize(
    "raw",
    [
        "7٩٥٨٤١٢٣٤٥٦",  # Arabic-Indic digits after an ASCII 7
        "٧٩٥٨٤١٢٣٤٥٦",
        "７９５８４１２３４５６",  # fullwidth
        "७९५८४१२३४५६",  # Devanagari
        "7958412345６",  # one fullwidth digit is enough
    ],
)
def test_only_ascii_digits_make_a_phone(raw: str) -> None:
    with pytest.raises(errors.InvalidInput):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["7٩١٨", "７９１８", "7918,7٩٠٠"])
def test_only_ascii_digits_make_a_phone_exception(raw: str) -> None:
    with pytest.raises(errors.WrongExceptionPhone):
        parse_phone_exceptions(raw, country_prefix="7")
