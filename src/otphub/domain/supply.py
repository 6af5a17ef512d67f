"""Where numbers come from: the kinds of provider, and what a purchase from a remote
provider (an SMSHub-protocol agent, an upstream sms-activate service) asks and gets.

Pure values. The clients that speak to agents and upstreams live in ``services/``; the
purchase's durable phases in ``services/remote_purchase.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ProviderKind(enum.StrEnum):
    LOCAL = "local"  # numbers registered in OTPHub; SMS pushed to /agent/api/sms
    AGENT = "agent"  # SMSHub agent protocol: OTPHub asks the agent for stock and numbers
    UPSTREAM = "upstream"  # another sms-activate-compatible service OTPHub buys from


REMOTE_KINDS: frozenset[ProviderKind] = frozenset({ProviderKind.AGENT, ProviderKind.UPSTREAM})


@dataclass(frozen=True, slots=True)
class RemoteProvider:
    """A remote provider as its client needs it: where to call, with which key (unsealed),
    and its health."""

    id: int
    name: str
    kind: ProviderKind
    account_id: int
    enabled: bool
    endpoint_url: str
    secret: str  # agent: its own provider key; upstream: OTPHub's API key there
    markup_bp: int  # upstream pricing: hundredths of a percent
    markup_amount: int  # upstream pricing: minor units
    down_since: int | None
    remote_balance: int | None  # upstream: OTPHub's balance there, minor units


@dataclass(frozen=True, slots=True)
class NumberRequest:
    """What a purchase asks a remote provider for."""

    purchase_id: int  # the pending purchase (remote_purchases.id)
    service: str
    country_id: int
    operator: str  # "any" or the operator's name
    payout: int  # agent: its ``sum``; upstream: the cost priced with (maxPrice), minor units
    excluded_prefixes: tuple[str, ...]  # phone prefixes with the country code


@dataclass(frozen=True, slots=True)
class RemoteNumber:
    """A number a remote provider handed out."""

    remote_id: str  # the agent's activationId, the upstream's activation id
    phone: str  # digits with the country code
    operator: str


class NoRemoteNumbers(Exception):
    """The provider answered that it has no number (NO_NUMBERS): try the next offer."""


class SupplierFailure(Exception):
    """The provider failed: timeout, refused connection, an error answer, garbage, or too
    many calls in flight. The purchase tries the next offer; the customer pays nothing."""


def markup_price(cost: int, *, markup_bp: int, markup_amount: int) -> int:
    """``cost x (1 + markup_bp / 10,000) + markup_amount``, rounded up to the minor unit."""
    scaled = cost * (10_000 + markup_bp)
    return -(-scaled // 10_000) + markup_amount


def parse_markup_percent(raw: str) -> int:
    """``--markup-percent``: a percent with at most two decimals, in hundredths of a percent
    (``12.5`` -> 1250). Refused, never rounded, like every amount."""
    text = raw.strip()
    whole, _, fraction = text.partition(".")
    if not whole.isascii() or not whole.isdigit() or len(whole) > 6 or len(fraction) > 2:
        raise ValueError(f"a markup percent is a number with at most two decimals, not {raw!r}")
    if fraction and not (fraction.isascii() and fraction.isdigit()):
        raise ValueError(f"a markup percent is a number with at most two decimals, not {raw!r}")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or "0")
