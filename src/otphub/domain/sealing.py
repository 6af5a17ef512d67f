"""Secrets OTPHub must send to others (an agent's key, an upstream's API key) are kept
sealed under the server secret: encrypted and authenticated (Fernet: AES-128-CBC with
HMAC-SHA256), so a copy of the database alone does not reveal them, and a changed
ciphertext is refused rather than decrypted to garbage.

The Fernet key is derived from the server secret with HMAC, for this one purpose, so the
secret itself is never used as an encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

_PURPOSE = b"otphub sealed provider secrets v1"


class SealError(ValueError):
    """A sealed value cannot be opened: another server secret, or a damaged value."""


def _fernet(server_secret: bytes) -> Fernet:
    key = hmac.new(server_secret, _PURPOSE, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(server_secret: bytes, value: str) -> str:
    return _fernet(server_secret).encrypt(value.encode()).decode("ascii")


def unseal(server_secret: bytes, sealed: str) -> str:
    try:
        return _fernet(server_secret).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise SealError(
            "a sealed provider secret cannot be opened: the server secret differs from the "
            "one it was sealed with, or the value is damaged"
        ) from exc
