"""API keys: recognisable, self-checking, and stored only as a keyed hash.

A key reads ``ohc_`` (customer) or ``ohp_`` (provider), 30 random base62 characters
(178 bits), and a 6-character checksum of the rest. The prefix tells a person (and a
secret scanner) what leaked; the checksum lets the server turn away a mistyped or made-up
key without touching the database. Keys travel in query strings and JSON, so they use
only letters, digits and ``_``.

The database keeps HMAC-SHA256(server secret, key): a stolen database alone does not let
anyone act as a customer or provider.
"""

from __future__ import annotations

import hmac
import re
import secrets
import string
import zlib

CUSTOMER_PREFIX = "ohc_"
PROVIDER_PREFIX = "ohp_"
_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_RANDOM_LENGTH = 30
_CHECKSUM_LENGTH = 6
_SHAPE = re.compile(r"oh[cp]_[0-9A-Za-z]{36}")
KEY_LENGTH = len(CUSTOMER_PREFIX) + _RANDOM_LENGTH + _CHECKSUM_LENGTH
HINT_LENGTH = 10


def _base62(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode()), _CHECKSUM_LENGTH)


def new_key(prefix: str) -> str:
    body = prefix + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return body + _checksum(body)


def looks_like_key(key: str, prefix: str) -> bool:
    """Length, shape, owner kind and checksum: everything that can be checked without a
    lookup. The length comes first, so a 60 KB "key" costs one comparison."""
    return (
        len(key) == KEY_LENGTH
        and key.startswith(prefix)
        and _SHAPE.fullmatch(key) is not None
        and hmac.compare_digest(_checksum(key[:-_CHECKSUM_LENGTH]), key[-_CHECKSUM_LENGTH:])
    )


def key_hash(secret: bytes, key: str) -> str:
    if not secret:
        # Never an HMAC under an empty key: every deployment would share it.
        raise ValueError("no server secret")
    return hmac.digest(secret, key.encode(), "sha256").hex()


# The digests of keys that passed ``looks_like_key``, most recent last. Every request
# presents a key, most of them the same few again and again, and the checks (a regex and a
# base62 checksum) and the HMAC cost several times the lookup that follows: a key that
# passed them once is answered from here. Only checked keys are ever stored, 40
# characters each, so whatever clients present, this holds at most ``_KNOWN_MAX`` short
# strings; a presented string is only looked up, after its length was compared.
_KNOWN_MAX = 4096
_known: dict[tuple[bytes, str, str], str] = {}


def presented_digest(secret: bytes, key: str, prefix: str) -> str | None:
    """``key_hash`` of a presented key, or ``None`` if it cannot be a key of this kind
    (``looks_like_key``). A pure function of its arguments (whether the key is still valid
    is always the database's answer), so its results may be kept (``_known``)."""
    if len(key) != KEY_LENGTH:
        return None
    known = _known.get((secret, key, prefix))
    if known is not None:
        return known
    if not looks_like_key(key, prefix):
        return None
    digest = key_hash(secret, key)
    if len(_known) >= _KNOWN_MAX:
        del _known[next(iter(_known))]  # the oldest entry
    _known[(secret, key, prefix)] = digest
    return digest


def hint(key: str) -> str:
    """What lists show of a key: enough to recognise it, far too little to use it."""
    return key[:HINT_LENGTH]
