"""The pure rules of web-console logins (domain/logins.py): how an email is cleaned, what a
password must be, session tokens, and how a CSRF token is bound to its session."""

from __future__ import annotations

import pytest

from otphub.domain import errors, logins

SECRET = b"unit-test-secret-0123456789abcdef"


# ---------------------------------------------------------------- emails


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  ann@example.com\t\n", "ann@example.com"),
        ("ann.b+tag@mail.example.co.uk", "ann.b+tag@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_an_email_is_trimmed_and_folded_to_lower_case(raw: str, clean: str) -> None:
    assert logins.clean_email(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",  # no dot in the domain
        "ann@example.",  # nothing after the dot
        "ann@@example.com",
        "ann@exa@mple.com",
        "ann smith@example.com",
        "ann@exa mple.com",
        "a" * 65 + "@example.com",  # the local part is at most 64 characters
        "ann@" + "d" * 250 + ".com",  # longer than 254 in all
        "ann\x00@example.com",  # control characters: PostgreSQL refuses NUL in text
        "ann@exam\x00ple.com",
        "ann\x07@example.com",
    ],
)
def test_what_is_not_an_email_is_refused(raw: str) -> None:
    with pytest.raises(errors.InvalidInput):
        logins.clean_email(raw)


def test_the_longest_email_allowed_is_254_characters() -> None:
    local = "a" * 64
    domain = "d" * (logins.MAX_EMAIL - len(local) - 1 - 4) + ".com"
    email = f"{local}@{domain}"
    assert len(email) == logins.MAX_EMAIL
    assert logins.clean_email(email) == email
    with pytest.raises(errors.InvalidInput):
        logins.clean_email(f"{local}@d{domain}")


@pytest.mark.parametrize(
    ("raw", "counted"),
    [
        ("  Not An Email ", "not an email"),
        ("ann\x00@Example.com", "ann@example.com"),
        ("\x00\x01\x7f", ""),
        ("x" * 1000, "x" * logins.MAX_EMAIL),
    ],
)
def test_a_failed_attempt_with_no_email_is_counted_under_printable_text(
    raw: str, counted: str
) -> None:
    assert logins.attempted_email(raw) == counted


# ---------------------------------------------------------------- passwords


def test_a_password_needs_ten_characters() -> None:
    assert logins.MIN_PASSWORD == 10
    with pytest.raises(errors.InvalidInput, match="at least 10"):
        logins.check_password("x" * 9)
    assert logins.check_password("x" * 10) == "x" * 10


def test_a_password_has_at_most_256_characters() -> None:
    assert logins.check_password("y" * logins.MAX_PASSWORD) == "y" * logins.MAX_PASSWORD
    with pytest.raises(errors.InvalidInput, match="at most 256"):
        logins.check_password("y" * (logins.MAX_PASSWORD + 1))


@pytest.mark.parametrize("password", [" leading space", "trailing space ", "\ttabbed in front"])
def test_a_password_must_not_start_or_end_with_a_space(password: str) -> None:
    with pytest.raises(errors.InvalidInput, match="space"):
        logins.check_password(password)


def test_spaces_and_any_characters_inside_a_password_are_kept() -> None:
    password = "correct horse battery ✓ staple"
    assert logins.check_password(password) == password


def test_length_counts_characters_not_bytes() -> None:
    # Ten characters of three bytes each: long enough.
    assert logins.check_password("ж" * 10) == "ж" * 10


# ---------------------------------------------------------------- tokens


def test_session_tokens_are_random_and_long() -> None:
    tokens = {logins.new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(token) >= 43 for token in tokens)  # 32 random bytes, base64url


def test_the_database_keeps_a_digest_not_the_token() -> None:
    token = logins.new_token()
    digest = logins.token_digest(token)
    assert digest != token and token not in digest
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert logins.token_digest(token) == digest


def test_sessions_last_seven_days_for_customers_and_twelve_hours_for_operators() -> None:
    assert logins.session_seconds("customer") == 7 * 86400
    assert logins.session_seconds("operator") == 12 * 3600


# ---------------------------------------------------------------- CSRF


def test_a_csrf_token_is_valid_for_the_session_it_was_made_for() -> None:
    binding = logins.token_digest(logins.new_token())
    token = logins.csrf_token(SECRET, binding)
    assert logins.csrf_valid(SECRET, binding, token)
    assert logins.csrf_token(SECRET, binding) == token  # stable: every form of a session


def test_a_csrf_token_of_another_session_is_refused() -> None:
    mine = logins.token_digest(logins.new_token())
    theirs = logins.token_digest(logins.new_token())
    assert not logins.csrf_valid(SECRET, mine, logins.csrf_token(SECRET, theirs))


def test_a_csrf_token_made_with_another_secret_is_refused() -> None:
    binding = logins.token_digest(logins.new_token())
    forged = logins.csrf_token(b"another-server-secret-0000000000", binding)
    assert not logins.csrf_valid(SECRET, binding, forged)


def test_a_csrf_token_is_not_the_binding_itself() -> None:
    # The page shows the token; it must not reveal the session's digest (nor the token).
    binding = logins.token_digest(logins.new_token())
    assert logins.csrf_token(SECRET, binding) != binding


@pytest.mark.parametrize("presented", [None, "", "0" * 64, "not hex at all"])
def test_a_missing_or_wrong_csrf_token_is_refused(presented: str | None) -> None:
    binding = logins.token_digest(logins.new_token())
    assert not logins.csrf_valid(SECRET, binding, presented)


def test_no_binding_means_no_valid_csrf_token() -> None:
    # A request with neither a session nor a pre-session cookie can present no valid token,
    # not even the one computed for the empty binding.
    assert not logins.csrf_valid(SECRET, "", logins.csrf_token(SECRET, ""))


def test_a_truncated_or_altered_csrf_token_is_refused() -> None:
    binding = logins.token_digest(logins.new_token())
    token = logins.csrf_token(SECRET, binding)
    assert not logins.csrf_valid(SECRET, binding, token[:-1])
    altered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert not logins.csrf_valid(SECRET, binding, altered)
    assert not logins.csrf_valid(SECRET, binding, token.upper() if token.upper() != token else "")


def test_the_servers_hasher_is_argon2id_at_argon2s_default_cost() -> None:
    """The suite hashes cheaply in its own process (tests/conftest.py); the server keeps
    argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes, 4 lanes)."""
    from argon2 import Type

    from tests.conftest import PRODUCTION_HASHER

    assert PRODUCTION_HASHER.type is Type.ID
    assert (PRODUCTION_HASHER.memory_cost, PRODUCTION_HASHER.time_cost) == (65536, 3)
    assert PRODUCTION_HASHER.parallelism == 4
    assert PRODUCTION_HASHER.hash("x" * 12).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
