"""Phone numbers and phone prefixes as the protocol writes them: digits only."""

from __future__ import annotations

import re

from otphub.domain import errors

_PHONE = re.compile(r"[1-9]\d{6,14}")  # E.164 without '+': at most 15 digits
_DIGITS = re.compile(r"\d+")


def normalize_phone(raw: str) -> str:
    """Accept ``+7 958 412-34-56`` style input from operators; store ``79584123456``."""
    cleaned = re.sub(r"[\s()+-]", "", raw)
    if not _PHONE.fullmatch(cleaned):
        raise errors.InvalidInput(f"malformed phone number: {raw!r}")
    return cleaned


def parse_phone_exceptions(raw: str | None, *, country_prefix: str) -> tuple[str, ...]:
    """``phoneException``: comma list of the country code followed by 3 to 6 digits."""
    if raw is None:
        return ()
    prefixes: list[str] = []
    for part in raw.split(","):
        item = part.strip()
        if not item:
            continue
        if (
            not _DIGITS.fullmatch(item)
            or not item.startswith(country_prefix)
            or not 3 <= len(item) - len(country_prefix) <= 6
        ):
            raise errors.WrongExceptionPhone()
        prefixes.append(item)
    return tuple(prefixes)
