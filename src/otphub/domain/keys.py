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

import functools
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


def presented_digest(secret: bytes, key: str, prefix: str) -> str | None:
    """``key_hash`` of a presented key, or ``None`` if it cannot be a key of this kind
    (``looks_like_key``). The checks run on every request, before the cache: only a
    string that could be a real key (40 characters, checksum right) is ever kept, so
    whatever a client presents, the cache holds at most 4,096 such short strings."""
    return _cached_hash(secret, key) if looks_like_key(key, prefix) else None


@functools.lru_cache(maxsize=4096)
def _cached_hash(secret: bytes, key: str) -> str:
    """Every request presents a key, most of them the same few again and again: the HMAC
    costs more than the lookup that follows, so it is kept. A pure function of its
    arguments (whether the key is still valid is always the database's answer)."""
    return key_hash(secret, key)


def hint(key: str) -> str:
    """What lists show of a key: enough to recognise it, far too little to use it."""
    return key[:HINT_LENGTH]
