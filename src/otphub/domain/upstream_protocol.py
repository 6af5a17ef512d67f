"""The sms-activate customer protocol as OTPHub reads it from an upstream service it buys
from: pure parsing of the upstream's answers.

Strict on purpose. The upstream is untrusted input: an answer that is not exactly one of
the protocol's shapes is ``Garbage``, which the client turns into a ``SupplierFailure``;
nothing the upstream writes ever reaches OTPHub's own customers (they only ever see
OTPHub's protocol words). Amounts are exact: a cost with more decimals than the currency
has is refused for its line, never rounded.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from otphub.domain.money import MAX_MINOR, Currency


class Garbage(ValueError):
    """The upstream answered something that is not the protocol."""


def shown(body: str | bytes, limit: int = 40) -> str:
    """A short, printable excerpt of an answer for logs and ``last_error`` (never a code:
    callers show answers that were refused, not the codes they carried)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    clean = "".join(c if c.isprintable() and c.isascii() else "?" for c in text[:limit])
    return clean + ("..." if len(text) > limit else "")


# ---------------------------------------------------------------- getBalance

_AMOUNT = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]{1,15})(?:\.(?P<fraction>[0-9]{1,12}))?")


def parse_balance(body: str, money: Currency) -> int:
    """``ACCESS_BALANCE:12.50`` -> 1250. Rounded down to the minor unit (a balance read
    too low only makes OTPHub stop selling a little early); below zero reads as 0."""
    word, _, amount = body.partition(":")
    match = _AMOUNT.fullmatch(amount)
    if word != "ACCESS_BALANCE" or match is None:
        raise Garbage(f"not a balance: {shown(body)}")
    if match.group("sign"):
        return 0
    value = Decimal(f"{match.group('whole')}.{match.group('fraction') or '0'}")
    minor = int(value.scaleb(money.decimals).to_integral_value(rounding=ROUND_FLOOR))
    return min(minor, MAX_MINOR)


# ---------------------------------------------------------------- getPrices


@dataclass(frozen=True, slots=True)
class PriceLine:
    """Stock at the upstream: ``count`` numbers for (country, service) at ``cost``."""

    country_id: int
    service: str
    count: int
    cost: int  # minor units


@dataclass(frozen=True, slots=True)
class Prices:
    lines: tuple[PriceLine, ...]
    # Lines left out: an unknown country or service (the catalog lacks it), or a line
    # that is malformed or priced more finely than the currency (refused, never rounded).
    unknown: int
    refused: int


def _no_constant(name: str) -> Any:
    raise Garbage(f"{name} is not a number")


def exact_minor(value: object, money: Currency) -> int | None:
    """A JSON number (read as ``int`` or ``Decimal``) in minor units, or ``None`` when it
    is not an exact non-negative amount of the currency."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        scaled = Decimal(value).scaleb(money.decimals)
        if not scaled.is_finite() or scaled != scaled.to_integral_value():
            return None
    except InvalidOperation:
        return None
    minor = int(scaled)
    return minor if 0 <= minor <= MAX_MINOR else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 10**9 else None


def parse_prices(
    body: bytes, money: Currency, *, countries: Collection[int], services: Collection[str]
) -> Prices:
    """getPrices: ``{"<country id>": {"<service>": {"cost": 0.5, "count": 120}}}``.

    Countries and services are the standard sms-activate ids, which OTPHub's catalog uses
    too; ids the catalog lacks are skipped. A line with a malformed cost or count, or a
    cost with more decimals than the currency has, is refused alone; an answer that is not
    this shape at all is ``Garbage``. Lines without stock are left out.
    """
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except Garbage:
        raise
    except (ValueError, RecursionError) as exc:  # JSON errors, 5,000-digit integers
        raise Garbage(f"getPrices is not JSON: {shown(body)}") from exc
    if not isinstance(document, dict):
        raise Garbage(f"getPrices is not a JSON object: {shown(body)}")
    lines: list[PriceLine] = []
    unknown = refused = 0
    for country_key, by_service in document.items():
        country = int(country_key) if country_key.isascii() and country_key.isdigit() else None
        if not isinstance(by_service, dict):
            raise Garbage(f"getPrices country {shown(country_key, 8)} is not an object")
        if country is None or country not in countries:
            unknown += len(by_service)
            continue
        for service, entry in by_service.items():
            if service not in services:
                unknown += 1
                continue
            if not isinstance(entry, dict):
                refused += 1
                continue
            cost = exact_minor(entry.get("cost"), money)
            count = _count(entry.get("count"))
            if cost is None or count is None:
                refused += 1
                continue
            if count > 0:
                lines.append(PriceLine(country, service, count, cost))
    return Prices(lines=tuple(lines), unknown=unknown, refused=refused)


# ---------------------------------------------------------------- getNumber

_ACCESS_NUMBER = re.compile(r"ACCESS_NUMBER:(?P<id>[0-9]{1,20}):(?P<phone>[0-9]{5,16})")


class NumberAnswer(enum.Enum):
    NO_NUMBERS = "no numbers"  # NO_NUMBERS, or WRONG_MAX_PRICE (its price rose)
    NO_BALANCE = "no balance"  # OTPHub's balance there cannot pay for it


@dataclass(frozen=True, slots=True)
class Bought:
    remote_id: str
    phone: str


def parse_number(body: str) -> Bought | NumberAnswer:
    """getNumber: ``ACCESS_NUMBER:<id>:<phone>``, or why there is none."""
    match = _ACCESS_NUMBER.fullmatch(body)
    if match is not None:
        return Bought(remote_id=match.group("id"), phone=match.group("phone"))
    if body == "NO_NUMBERS" or body.startswith("WRONG_MAX_PRICE:"):
        return NumberAnswer.NO_NUMBERS
    if body == "NO_BALANCE":
        return NumberAnswer.NO_BALANCE
    raise Garbage(f"getNumber answered {shown(body)}")


# ---------------------------------------------------------------- getStatus


class RemoteState(enum.Enum):
    WAITING = "waiting"  # STATUS_WAIT_CODE (and STATUS_WAIT_RESEND, which some send)
    CODE = "code"  # STATUS_OK:<code>
    RETRY = "retry"  # STATUS_WAIT_RETRY:<previous code>: waiting for another SMS
    ENDED = "ended"  # STATUS_CANCEL: cancelled, expired or finished there
    UNKNOWN = "unknown"  # NO_ACTIVATION: the upstream does not know the id


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    state: RemoteState
    code: str | None = None


# A code is what a customer types; OTPHub passes it on as an SMS text. Printable, at most
# 1,024 characters (an upstream without a code extractor sends the whole SMS).
_CODE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]{1,1024}")


def _code(raw: str) -> str:
    code = raw.strip()
    if not _CODE.fullmatch(code):
        # Never quoted: even a malformed code is a one-time password.
        raise Garbage("a malformed code")
    return code


def parse_status(body: str) -> RemoteStatus:
    word, sep, rest = body.partition(":")
    if word == "STATUS_OK" and sep:
        return RemoteStatus(RemoteState.CODE, _code(rest))
    if word == "STATUS_WAIT_RETRY" and sep:
        return RemoteStatus(RemoteState.RETRY, _code(rest))
    if not sep:
        if body in ("STATUS_WAIT_CODE", "STATUS_WAIT_RESEND"):
            return RemoteStatus(RemoteState.WAITING)
        if body == "STATUS_CANCEL":
            return RemoteStatus(RemoteState.ENDED)
        if body == "NO_ACTIVATION":
            return RemoteStatus(RemoteState.UNKNOWN)
    # Only the word before any ':' is quoted: what follows may be a code.
    raise Garbage(f"getStatus answered {shown(word, 24)}")


def parse_ended_code(body: bytes) -> str | None:
    """getStatusV2 of an activation the upstream ended: the code of its SMS, if it had one
    (an activation that expired there with a code was finished, and OTPHub paid for it),
    ``None`` for the plain word ``STATUS_CANCEL`` or an SMS without a code."""
    if body.strip() in (b"STATUS_CANCEL", b"NO_ACTIVATION", b"BAD_ACTION"):
        # Cancelled without an SMS, or an upstream without getStatusV2 (which then cannot
        # tell either): no code is known.
        return None
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except Garbage:
        raise
    except (ValueError, RecursionError) as exc:
        raise Garbage("getStatusV2 is not JSON") from exc
    if not isinstance(document, dict):
        raise Garbage("getStatusV2 is not a JSON object")
    sms = document.get("sms")
    if sms is None:
        return None
    if not isinstance(sms, dict):
        raise Garbage("getStatusV2 sms is not an object")
    code = sms.get("code")
    if code is None or code == "":
        return None
    if not isinstance(code, str):
        raise Garbage("getStatusV2 code is not a string")
    return _code(code)


# ---------------------------------------------------------------- setStatus

# What the upstream answers when it did what setStatus asked.
STATUS_ANSWERS: dict[int, str] = {
    1: "ACCESS_READY",
    3: "ACCESS_RETRY_GET",
    6: "ACCESS_ACTIVATION",
    8: "ACCESS_CANCEL",
}
# Answers meaning "nothing left to do": the activation is in a final state there (or
# unknown). Delivering the status again would change nothing.
_FINAL = frozenset({"NO_ACTIVATION", "BAD_STATUS", "ACCESS_CANCEL_ALREADY", "STATUS_CANCEL"})


class Delivery(enum.Enum):
    DONE = "done"  # acknowledged
    MOOT = "moot"  # refused because the activation has ended there: done, logged
    LATER = "later"  # EARLY_CANCEL_DENIED: try again later


def parse_set_status(body: str, status: int) -> Delivery:
    if body == STATUS_ANSWERS.get(status):
        return Delivery.DONE
    if body in _FINAL:
        return Delivery.MOOT
    if body == "EARLY_CANCEL_DENIED":
        return Delivery.LATER
    raise Garbage(f"setStatus {status} answered {shown(body.partition(':')[0], 24)}")
