"""Phone numbers and phone prefixes as the protocol writes them: ASCII digits only.

``\\d`` in a Python pattern also matches Arabic-Indic, Devanagari, fullwidth and every
other Unicode digit: ``7\u0669\u0665\u0668...`` would be stored as a phone that no SMS
ever matches. Every pattern here spells out ``[0-9]``.
"""

from __future__ import annotations

import re

from otphub.domain import errors

_PHONE = re.compile(r"[1-9][0-9]{6,14}")  # E.164 without '+': at most 15 digits
_DIGITS = re.compile(r"[0-9]+")


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
