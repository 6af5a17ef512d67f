"""Referrals: a customer's code, and what the referrer of a captured activation earns."""

from __future__ import annotations

import secrets
from decimal import ROUND_FLOOR, Decimal

# The same alphabet and length as migration 0006 gave existing customers: lower-case
# letters and digits without the look-alikes (l, o, 0, 1), so a code read aloud or copied by
# hand still works.
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
CODE_LENGTH = 10


def new_code() -> str:
    """Ten characters: short enough to share, not worth guessing (50 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def reward(*, price: int, payout: int, share: Decimal) -> int:
    """The referrer's part of a captured activation, in minor units: ``share`` percent of
    the operator's margin (price minus the provider's payout), rounded down, never
    negative, never more than the margin. Exact: integers and Decimal, no floats."""
    margin = price - payout
    if margin <= 0 or share <= 0:
        return 0
    part = (Decimal(margin) * share / 100).to_integral_value(rounding=ROUND_FLOOR)
    return min(int(part), margin)
