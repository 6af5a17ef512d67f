"""Web-console logins: the shape of an email and a password, session tokens, and the limits
on guessing. Pure rules; hashing (argon2id) happens in services/logins.py.

A session cookie holds a random token (256 bits); the database keeps only its SHA-256, so a
copy of the database signs nobody in. The CSRF token of a form is an HMAC of the session's
digest (or, before sign-in, of a random pre-session cookie) under the server secret: a page
of another site can neither read it nor compute it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from otphub.domain import errors

# RFC 5321's limit on a forward path; anything longer cannot be delivered to anyway.
MAX_EMAIL = 254
MIN_PASSWORD = 10
# argon2 hashes any length, but a megabyte "password" would be a denial of service.
MAX_PASSWORD = 256
# A deliberately plain check (one @, a dot in the domain, no spaces): the address is a login
# name here, never mailed to, so refusing valid-but-odd addresses would only annoy. Control
# characters are refused: PostgreSQL cannot store a NUL in text, and none belongs in a login.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+")

CUSTOMER_SESSION_SECONDS = 7 * 86400
OPERATOR_SESSION_SECONDS = 12 * 3600

# Failed sign-ins: past this many for one email, or from one address, within the window,
# further attempts are refused (even right ones) until the oldest failure leaves the window.
FAILURE_WINDOW = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20

SubjectKind = Literal["customer", "operator"]


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a console session signs in: a customer or an operator, by id."""

    kind: SubjectKind
    id: int
    email: str


def clean_email(raw: str) -> str:
    """The email as stored and compared: trimmed and folded to lower case."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL or _EMAIL.fullmatch(email) is None:
        raise errors.InvalidInput("that is not an email address (name@example.com)")
    return email


def attempted_email(raw: str) -> str:
    """What a sign-in with text that is not an email is counted under (failures are limited
    per email): folded like an email, without control characters (PostgreSQL cannot store a
    NUL), cut to the column's size."""
    kept = "".join(c for c in raw if not _is_control(c))
    return kept.strip().lower()[:MAX_EMAIL]


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F


def check_password(password: str) -> str:
    """A new password: long enough to resist guessing, short enough to hash."""
    if len(password) < MIN_PASSWORD:
        raise errors.InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise errors.InvalidInput(f"a password may have at most {MAX_PASSWORD} characters")
    if password.strip() != password:
        raise errors.InvalidInput("a password must not start or end with a space")
    return password


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: bytes, binding: str) -> str:
    """The token a form must carry, bound to the session (or pre-session) it was served to."""
    return hmac.new(secret, b"csrf:" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, binding: str, presented: str | None) -> bool:
    if not presented or not binding:
        return False
    return hmac.compare_digest(csrf_token(secret, binding), presented)


def session_seconds(kind: SubjectKind) -> int:
    return CUSTOMER_SESSION_SECONDS if kind == "customer" else OPERATOR_SESSION_SECONDS
