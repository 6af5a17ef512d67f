"""Typed results of the sms-activate protocol's actions (frozen dataclasses).

Money is ``Decimal`` (built from the answer's text, never through a float's binary value
when the answer has text), times are the server's ``YYYY-MM-DD HH:MM:SS`` text in its own
time zone (the protocol does not say which), ids are ``int``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class State(enum.StrEnum):
    """An activation's state, as API v1 names them. The protocol's ``STATUS_CANCEL`` is
    ``CANCELLED``: the protocol says it for a finished activation too."""

    WAITING = "waiting"
    CODE = "code"  # a code was received
    RETRY = "retry"  # another SMS was asked for after a code
    FINISHED = "finished"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Number:
    """getNumber: the activation bought and its phone number (digits with country code)."""

    activation_id: int
    phone: str


@dataclass(frozen=True)
class NumberV2:
    """getNumberV2."""

    activation_id: int
    phone: str
    cost: Decimal
    currency: int  # ISO 4217 numeric (840: USD)
    country: int
    country_phone_code: int | None
    can_get_another_sms: bool
    activation_time: str | None
    activation_end_time: str | None
    operator: str  # "any" when unknown


@dataclass(frozen=True)
class Status:
    """getStatus. ``code`` is the latest code (``STATUS_OK``) or the previous one
    (``STATUS_WAIT_RETRY``); ``answer`` the raw answer."""

    state: State
    code: str | None
    answer: str

    @property
    def waiting(self) -> bool:
        """Still waiting for a code (first one, or another after setStatus 3)."""
        return self.state in (State.WAITING, State.RETRY)


@dataclass(frozen=True)
class Sms:
    date_time: str | None
    code: str | None
    text: str | None


@dataclass(frozen=True)
class StatusV2:
    """getStatusV2. ``cancelled`` when the answer was ``STATUS_CANCEL`` (then no ``sms``)."""

    sms: Sms | None
    call: dict[str, Any] | None
    verification_type: int = 0
    cancelled: bool = False


@dataclass(frozen=True)
class FullSms:
    """getFullSms: ``text`` of the latest SMS, or None with the state (waiting, cancelled)."""

    state: State
    text: str | None


@dataclass(frozen=True)
class ActiveActivation:
    """A row of getActiveActivations (every dialect's shape read into one)."""

    activation_id: int
    service: str
    phone: str
    cost: Decimal
    status: str  # "4" waiting, "2" code received, "3" waiting for another SMS
    codes: tuple[str, ...]
    text: str | None
    activation_time: str | None
    country: int
    can_get_another_sms: bool
    currency: int | None


@dataclass(frozen=True)
class HistoryEntry:
    """A row of getHistory. ``status`` "6" finished, "8" cancelled."""

    id: int
    date: str | None
    phone: str
    sms: tuple[Any, ...]
    cost: Decimal
    status: str
    currency: int | None


@dataclass(frozen=True)
class Price:
    """getPrices: the lowest price with stock and the free numbers at any price."""

    cost: Decimal
    count: int
    physical_count: int


@dataclass(frozen=True)
class Country:
    id: int
    eng: str
    rus: str
    chn: str
    visible: bool
    retry: bool
    rent: bool
    multi_service: bool


@dataclass(frozen=True)
class Service:
    code: str
    name: str


@dataclass(frozen=True)
class TopCountry:
    """getTopCountriesByService, best stock first."""

    country: int
    count: int
    physical_count: int
    price: Decimal
    retail_price: Decimal | None
