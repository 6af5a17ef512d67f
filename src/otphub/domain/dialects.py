"""Dialects: the few answer shapes in which published clients of other services disagree
with sms-activate (customer-api.md, "Dialects"). A per-customer setting; every other answer
is the same in all of them."""

from __future__ import annotations

from typing import Final

from otphub.domain import errors

SMS_ACTIVATE: Final = "sms-activate"
GRIZZLY: Final = "grizzly"
HEROSMS: Final = "herosms"
DEFAULT: Final = SMS_ACTIVATE
# The order people read them in; the database's CHECK (schema.DIALECTS_CHECK) lists the same.
ALL: Final = (SMS_ACTIVATE, GRIZZLY, HEROSMS)


def checked(raw: str) -> str:
    """A dialect's name as given (case and spaces forgiven), or a refusal naming the choices."""
    name = raw.strip().lower()
    if name not in ALL:
        raise errors.InvalidInput(f"unknown dialect {raw!r}: choose one of {', '.join(ALL)}")
    return name
