"""What is for sale, as the customer asks for it and as it is counted: plain values that
the storage layer fills and the HTTP layer shapes into answers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NumberFilter:
    """The customer's filters of getNumber that apply to single numbers."""

    operators: tuple[str, ...] = ()  # empty = any
    excluded_prefixes: tuple[str, ...] = ()


ANY_NUMBER = NumberFilter()


@dataclass(frozen=True, slots=True)
class StockLine:
    """Free numbers of one enabled offer (provider x country x service)."""

    country_id: int
    service: str
    provider_id: int
    price: int
    count: int
