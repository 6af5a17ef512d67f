"""API keys: random, URL-safe, and stored only as a keyed hash.

Keys travel in query strings and JSON bodies, so they use only letters, digits, ``_`` and
``-``. The database keeps HMAC-SHA256(server secret, key): a stolen database alone does not
let anyone act as a customer or provider.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

CUSTOMER_PREFIX = "ohc_"
PROVIDER_PREFIX = "ohp_"
_KEY_CHARS = re.compile(r"[A-Za-z0-9_-]{8,128}")


def new_key(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def key_hash(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def looks_like_key(key: str) -> bool:
    """Cheap shape check before any hashing or database work."""
    return _KEY_CHARS.fullmatch(key) is not None
