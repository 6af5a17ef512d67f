"""Reading the business without SQL: what the operator's list and show commands print."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from otphub.db import reports

# Re-exported: the rows these use cases return.
from otphub.db.activations import Activation as Activation
from otphub.db.reports import CustomerRow as CustomerRow
from otphub.db.reports import JournalRow as JournalRow
from otphub.db.reports import KeyRow as KeyRow
from otphub.db.reports import NumberRow as NumberRow
from otphub.db.reports import OfferRow as OfferRow
from otphub.db.reports import ProviderRow as ProviderRow
from otphub.db.reports import SmsRow as SmsRow
from otphub.domain import errors
from otphub.domain.activation import State
from otphub.services.runtime import Runtime

MAX_LIMIT = 1000
NUMBER_STATUSES = ("free", "busy", "offline")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?")


def parse_time(raw: str | None, *, option: str) -> int | None:
    """A moment given on the command line: Unix seconds, or a UTC date
    (``2026-11-29``) or date and time (``2026-11-29T20:30``)."""
    if raw is None:
        return None
    text = raw.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    if _DATE.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)
        except ValueError:
            pass
        else:
            return int(moment.timestamp())
    raise errors.InvalidInput(
        f"{option}: {raw!r} is not a date (YYYY-MM-DD, YYYY-MM-DDTHH:MM, UTC) or Unix seconds"
    )


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidInput(f"--limit must be 1 to {MAX_LIMIT}")
    return limit


def _states(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    known = {s.value for s in State}
    wanted = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    bad = [s for s in wanted if s not in known]
    if bad or not wanted:
        raise errors.InvalidInput(
            f"unknown state {', '.join(bad) or raw!r}; states: {', '.join(sorted(known))}"
        )
    return wanted


@dataclass(frozen=True, slots=True)
class CustomerDetail:
    customer: CustomerRow
    keys: list[KeyRow]


async def list_customers(rt: Runtime, *, search: str | None, limit: int) -> list[CustomerRow]:
    async with rt.db.read() as conn:
        return await reports.customers_list(conn, search=search, limit=_limit(limit))


async def show_customer(rt: Runtime, *, customer_id: int) -> CustomerDetail:
    async with rt.db.read() as conn:
        found = await reports.customer(conn, customer_id)
        if found is None:
            raise errors.NotFound(f"no customer with id {customer_id}")
        keys = await reports.keys_of(conn, owner_kind="customer", owner_id=customer_id)
    return CustomerDetail(found, keys)


async def list_providers(rt: Runtime) -> list[ProviderRow]:
    async with rt.db.read() as conn:
        return await reports.providers_list(conn)


@dataclass(frozen=True, slots=True)
class ProviderDetail:
    provider: ProviderRow
    keys: list[KeyRow]


async def show_provider(rt: Runtime, *, provider_id: int) -> ProviderDetail:
    async with rt.db.read() as conn:
        found = await reports.provider(conn, provider_id)
        if found is None:
            raise errors.NotFound(f"no provider with id {provider_id}")
        keys = await reports.keys_of(conn, owner_kind="provider", owner_id=provider_id)
    return ProviderDetail(found, keys)


async def list_offers(
    rt: Runtime,
    *,
    provider_id: int | None,
    service: str | None,
    country_id: int | None,
    enabled: bool | None,
    limit: int,
) -> list[OfferRow]:
    if service is not None and service not in rt.catalog.services:
        raise errors.InvalidInput(f"unknown service code {service!r}")
    if country_id is not None and country_id not in rt.catalog.countries:
        raise errors.InvalidInput(f"unknown country id {country_id}")
    async with rt.db.read() as conn:
        return await reports.offers_list(
            conn,
            provider_id=provider_id,
            service=service,
            country_id=country_id,
            enabled=enabled,
            limit=_limit(limit),
        )


async def show_offer(rt: Runtime, *, offer_id: int) -> OfferRow:
    async with rt.db.read() as conn:
        found = await reports.offer(conn, offer_id)
    if found is None:
        raise errors.NotFound(f"no offer with id {offer_id}")
    return found


async def list_numbers(
    rt: Runtime,
    *,
    provider_id: int | None,
    country_id: int | None,
    operator: str | None,
    phone_prefix: str | None,
    status: str | None,
    limit: int,
) -> list[NumberRow]:
    if status is not None and status not in NUMBER_STATUSES:
        raise errors.InvalidInput(
            f"unknown number status {status!r}; statuses: {', '.join(NUMBER_STATUSES)}"
        )
    if country_id is not None and country_id not in rt.catalog.countries:
        raise errors.InvalidInput(f"unknown country id {country_id}")
    if phone_prefix is not None and not (phone_prefix.isascii() and phone_prefix.isdigit()):
        raise errors.InvalidInput(f"--phone must be digits, got {phone_prefix!r}")
    async with rt.db.read() as conn:
        return await reports.numbers_list(
            conn,
            provider_id=provider_id,
            country_id=country_id,
            operator=operator.strip().lower() if operator else None,
            phone_prefix=phone_prefix,
            status=status,
            limit=_limit(limit),
        )


@dataclass(frozen=True, slots=True)
class ActivationLine:
    activation: Activation
    refunded: bool


async def list_activations(
    rt: Runtime,
    *,
    customer_id: int | None,
    provider_id: int | None,
    state: str | None,
    refunded: bool | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> list[ActivationLine]:
    start = parse_time(since, option="--since")
    end = parse_time(until, option="--until")
    if start is not None and end is not None and end <= start:
        raise errors.InvalidInput("--until must be after --since")
    states = _states(state)
    async with rt.db.read() as conn:
        found = await reports.activations_list(
            conn,
            customer_id=customer_id,
            provider_id=provider_id,
            states=states,
            refunded=refunded,
            since=start,
            until=end,
            limit=_limit(limit),
        )
    return [ActivationLine(a, r) for a, r in found]


@dataclass(frozen=True, slots=True)
class ActivationDetail:
    activation: Activation
    sms: list[SmsRow]
    journal: list[JournalRow]

    @property
    def refund(self) -> JournalRow | None:
        return next((j for j in self.journal if j.kind == "refund"), None)


async def show_activation(rt: Runtime, *, activation_id: int) -> ActivationDetail:
    async with rt.db.read() as conn:
        found = await reports.activation(conn, activation_id)
        if found is None:
            raise errors.NotFound(f"no activation with id {activation_id}")
        texts = await reports.sms_of_activation(conn, activation_id)
        moves = await reports.journal_of_activation(conn, activation_id)
    return ActivationDetail(found, texts, moves)


async def unmatched_sms(
    rt: Runtime, *, provider_id: int | None, since: str | None, limit: int
) -> list[SmsRow]:
    start = parse_time(since, option="--since")
    async with rt.db.read() as conn:
        return await reports.unmatched_sms(
            conn, provider_id=provider_id, since=start, limit=_limit(limit)
        )


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: str  # a service code or a country id, as the API takes it
    name: str


def search_catalog(rt: Runtime, *, kind: str, search: str | None) -> list[CatalogEntry]:
    """Services or countries whose id is ``search`` (first) or whose name contains it (any
    case)."""
    if kind == "services":
        entries = [CatalogEntry(code, name) for code, name in rt.catalog.services.items()]
        entries.sort(key=lambda e: e.id)
    else:
        entries = [
            CatalogEntry(str(c.id), f"{c.name_en} ({c.iso2}, +{c.phone_prefix})")
            for c in sorted(rt.catalog.countries.values(), key=lambda c: c.id)
        ]
    if not search:
        return entries
    needle = search.strip().lower()
    exact = [e for e in entries if needle == e.id.lower()]
    return exact + [e for e in entries if needle in e.name.lower() and e not in exact]
