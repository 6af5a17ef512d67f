import pytest
from hypothesis import given
from hypothesis import strategies as st

from otphub.domain.codes import extract_code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your code: 48213", "48213"),
        ("Your Telegram code: 48213. Do not give it to anyone", "48213"),
        ("Telegram code 991-204", "991204"),
        ("G-123456 is your Google verification code", "123456"),
        ("FB-12345678 is your Facebook code", "12345678"),
        ("Your WhatsApp code 123-456", "123456"),
        ("Your WhatsApp code 123 456\nDon't share", "123456"),
        ("Ваш код: 5512", "5512"),
        ("<#> 77812 is your code", "77812"),
        ("Code 1234", "1234"),
        ("Code 12345678", "12345678"),
        ("Pay 1234.50 now, code 5521", "5521"),
        ("Call 79991234567 if it was not you. Code 4410", "4410"),
    ],
)
def test_codes_are_what_the_customer_types(text: str, code: str) -> None:
    assert extract_code(text) == code


@pytest.mark.parametrize(
    ("text", "fallback"),
    [
        ("no code here: call us", "no code here  call us"),
        ("Welcome!", "Welcome!"),
        ("abc 123 def", "abc 123 def"),  # 3 digits is not a code
        ("id:123456789", "id 123456789"),  # 9 digits is not a code
    ],
)
def test_without_a_code_the_whole_text_is_the_code(text: str, fallback: str) -> None:
    assert extract_code(text) == fallback


@given(st.text())
def test_a_code_never_contains_a_colon(text: str) -> None:
    assert ":" not in extract_code(text)
