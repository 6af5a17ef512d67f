"""Read-only statements for the operator's commands: customers, providers, offers, numbers,
activations and SMS as they stand. Nothing here writes, and nothing here is on a customer's
request path: these are plain SQLAlchemy statements, built per call.

The per-provider quality counters are derived by query from rows that exist anyway (SMS,
refund rows of the journal), so no request updates a counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, true

from otphub.db.activations import ACTIVATION_COLUMNS, Activation
from otphub.db.engine import Conn
from otphub.db.ledger import Kind
from otphub.db.schema import (
    accounts,
    activations,
    api_keys,
    customers,
    journal,
    numbers,
    offers,
    providers,
    sms,
)
from otphub.domain.activation import State

# domain/codes.py's contract: a recognised code is 4 to 8 digits; a text without one is
# stored whole as its "code" (with ':' replaced), which is never 4 to 8 digits only (such
# a text is itself a plain code). Written with trim(), which both databases have.
CODE_RECOGNISED = and_(
    func.length(sms.c.code).between(4, 8), func.trim(sms.c.code, "0123456789") == ""
)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: int
    name: str
    balance: int
    held: int
    max_live: int | None
    rate_limit: int | None
    banned_until: int | None
    created_at: int
    active_keys: int
    dialect: str
    referral_code: str | None


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    hint: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class ProviderRow:
    id: int
    name: str
    enabled: bool
    delivery_score: int
    payable: int
    created_at: int
    numbers: int
    numbers_online: int
    offers: int
    finished: int
    refunded: int
    sms_total: int
    sms_without_code: int
    sms_unmatched: int
    # Issue 9: remote providers (agents, upstreams); local: kind "local", the rest None.
    kind: str = "local"
    endpoint_url: str | None = None
    polled_at: int | None = None  # the last successful poll
    down_since: int | None = None  # None: up
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OfferRow:
    id: int
    provider_id: int
    service: str
    country_id: int
    price: int
    payout: int
    ttl: int | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class NumberRow:
    id: int
    provider_id: int
    country_id: int
    operator: str
    phone: str
    online: bool
    in_use: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class SmsRow:
    id: int
    provider_id: int
    provider_sms_id: int
    phone: str
    phone_from: str | None
    text: str
    code: str
    activation_id: int | None
    received_at: int


@dataclass(frozen=True, slots=True)
class JournalRow:
    id: int
    kind: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    resolves_id: int | None
    created_at: int
    note: str | None


# ---------------------------------------------------------------- customers


def _active_keys() -> Any:
    return (
        select(func.count(api_keys.c.id))
        .where(
            api_keys.c.owner_kind == "customer",
            api_keys.c.owner_id == customers.c.id,
            api_keys.c.revoked_at.is_(None),
        )
        .scalar_subquery()
    )


_CUSTOMER_COLUMNS = (
    customers.c.id,
    customers.c.name,
    accounts.c.balance,
    accounts.c.held,
    customers.c.max_live,
    customers.c.rate_limit,
    customers.c.banned_until,
    customers.c.created_at,
)
# After the count of active keys, in CustomerRow's order.
_CUSTOMER_SETTINGS = (customers.c.dialect, customers.c.referral_code)


async def customers_list(conn: Conn, *, search: str | None, limit: int) -> list[CustomerRow]:
    query = select(*_CUSTOMER_COLUMNS, _active_keys(), *_CUSTOMER_SETTINGS).join(
        accounts, accounts.c.id == customers.c.account_id
    )
    if search:
        # Part of the name or of the console email; a number is also tried as the id.
        needle = search.strip().lower()
        matches = [
            func.lower(customers.c.name).contains(needle, autoescape=True),
            customers.c.email.contains(needle, autoescape=True),
        ]
        if needle.isascii() and needle.isdigit() and len(needle) <= 18:
            matches.append(customers.c.id == int(needle))
        query = query.where(or_(*matches))
    rows = await conn.execute(query.order_by(customers.c.id).limit(limit))
    return [CustomerRow(*r) for r in rows]


async def customer(conn: Conn, customer_id: int) -> CustomerRow | None:
    row = (
        await conn.execute(
            select(*_CUSTOMER_COLUMNS, _active_keys(), *_CUSTOMER_SETTINGS)
            .join(accounts, accounts.c.id == customers.c.account_id)
            .where(customers.c.id == customer_id)
        )
    ).first()
    return CustomerRow(*row) if row is not None else None


async def account_of_customer(conn: Conn, customer_id: int) -> int | None:
    found = await conn.execute(select(customers.c.account_id).where(customers.c.id == customer_id))
    value = found.scalar_one_or_none()
    return int(value) if value is not None else None


async def keys_of(conn: Conn, *, owner_kind: str, owner_id: int) -> list[KeyRow]:
    rows = await conn.execute(
        select(api_keys.c.id, api_keys.c.hint, api_keys.c.created_at, api_keys.c.revoked_at)
        .where(api_keys.c.owner_kind == owner_kind, api_keys.c.owner_id == owner_id)
        .order_by(api_keys.c.id)
    )
    return [KeyRow(*r) for r in rows]


# ---------------------------------------------------------------- providers


def _count(table: Any, *where: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(table).where(*where).scalar_subquery()


def _provider_columns() -> tuple[Any, ...]:
    of_provider = providers.c.id
    refunded = (
        select(func.count())
        .select_from(journal.join(activations, activations.c.id == journal.c.activation_id))
        .where(journal.c.kind == Kind.REFUND.value, activations.c.provider_id == of_provider)
        .scalar_subquery()
    )
    return (
        providers.c.id,
        providers.c.name,
        providers.c.enabled,
        providers.c.delivery_score,
        accounts.c.balance,
        providers.c.created_at,
        _count(numbers, numbers.c.provider_id == of_provider),
        _count(numbers, numbers.c.provider_id == of_provider, numbers.c.online == true()),
        _count(offers, offers.c.provider_id == of_provider),
        _count(
            activations,
            activations.c.provider_id == of_provider,
            activations.c.state == State.FINISHED.value,
        ),
        refunded,
        _count(sms, sms.c.provider_id == of_provider),
        _count(sms, sms.c.provider_id == of_provider, not_(CODE_RECOGNISED)),
        _count(sms, sms.c.provider_id == of_provider, sms.c.activation_id.is_(None)),
        # Issue 9: how a remote provider is reached and its health (ProviderRow's tail).
        providers.c.kind,
        providers.c.endpoint_url,
        providers.c.polled_at,
        providers.c.down_since,
        providers.c.last_error,
    )


async def providers_list(conn: Conn) -> list[ProviderRow]:
    rows = await conn.execute(
        select(*_provider_columns())
        .join(accounts, accounts.c.id == providers.c.account_id)
        .order_by(providers.c.id)
    )
    return [ProviderRow(*r) for r in rows]


async def provider(conn: Conn, provider_id: int) -> ProviderRow | None:
    row = (
        await conn.execute(
            select(*_provider_columns())
            .join(accounts, accounts.c.id == providers.c.account_id)
            .where(providers.c.id == provider_id)
        )
    ).first()
    return ProviderRow(*row) if row is not None else None


# ---------------------------------------------------------------- offers and numbers

_OFFER_COLUMNS = (
    offers.c.id,
    offers.c.provider_id,
    offers.c.service,
    offers.c.country_id,
    offers.c.price,
    offers.c.payout,
    offers.c.ttl,
    offers.c.enabled,
)


async def offers_list(
    conn: Conn,
    *,
    provider_id: int | None,
    service: str | None,
    country_id: int | None,
    enabled: bool | None,
    limit: int,
) -> list[OfferRow]:
    query = select(*_OFFER_COLUMNS)
    if provider_id is not None:
        query = query.where(offers.c.provider_id == provider_id)
    if service is not None:
        query = query.where(offers.c.service == service)
    if country_id is not None:
        query = query.where(offers.c.country_id == country_id)
    if enabled is not None:
        query = query.where(offers.c.enabled == enabled)
    rows = await conn.execute(query.order_by(offers.c.id).limit(limit))
    return [OfferRow(*r) for r in rows]


async def offer(conn: Conn, offer_id: int) -> OfferRow | None:
    row = (await conn.execute(select(*_OFFER_COLUMNS).where(offers.c.id == offer_id))).first()
    return OfferRow(*row) if row is not None else None


_NUMBER_COLUMNS = (
    numbers.c.id,
    numbers.c.provider_id,
    numbers.c.country_id,
    numbers.c.operator,
    numbers.c.phone,
    numbers.c.online,
    numbers.c.in_use,
    numbers.c.created_at,
)


async def numbers_list(
    conn: Conn,
    *,
    provider_id: int | None,
    country_id: int | None,
    operator: str | None,
    phone_prefix: str | None,
    status: str | None,
    limit: int,
) -> list[NumberRow]:
    """``status``: ``free`` (online, no live activation), ``busy`` (in a live activation),
    ``offline`` (disabled by the operator)."""
    query = select(*_NUMBER_COLUMNS)
    if provider_id is not None:
        query = query.where(numbers.c.provider_id == provider_id)
    if country_id is not None:
        query = query.where(numbers.c.country_id == country_id)
    if operator is not None:
        query = query.where(numbers.c.operator == operator)
    if phone_prefix is not None:
        query = query.where(numbers.c.phone.startswith(phone_prefix, autoescape=True))
    if status == "free":
        query = query.where(numbers.c.online == true(), numbers.c.in_use == False)  # noqa: E712
    elif status == "busy":
        query = query.where(numbers.c.in_use == true())
    elif status == "offline":
        query = query.where(numbers.c.online == False)  # noqa: E712
    rows = await conn.execute(query.order_by(numbers.c.id).limit(limit))
    return [NumberRow(*r) for r in rows]


async def number(conn: Conn, number_id: int) -> NumberRow | None:
    row = (await conn.execute(select(*_NUMBER_COLUMNS).where(numbers.c.id == number_id))).first()
    return NumberRow(*row) if row is not None else None


# ---------------------------------------------------------------- activations and SMS


def _refunded_flag() -> Any:
    return (
        select(func.count())
        .select_from(journal)
        .where(journal.c.activation_id == activations.c.id, journal.c.kind == Kind.REFUND.value)
        .scalar_subquery()
    )


async def activations_list(
    conn: Conn,
    *,
    customer_id: int | None,
    provider_id: int | None,
    states: tuple[str, ...],
    refunded: bool | None,
    since: int | None,
    until: int | None,
    limit: int,
) -> list[tuple[Activation, bool]]:
    """Activations bought in [since, until), newest first, each with whether it was
    refunded."""
    query = select(*ACTIVATION_COLUMNS, _refunded_flag())
    if customer_id is not None:
        query = query.where(activations.c.customer_id == customer_id)
    if provider_id is not None:
        query = query.where(activations.c.provider_id == provider_id)
    if states:
        query = query.where(activations.c.state.in_(states))
    if since is not None:
        query = query.where(activations.c.created_at >= since)
    if until is not None:
        query = query.where(activations.c.created_at < until)
    if refunded is not None:
        flag = _refunded_flag()
        query = query.where(flag > 0 if refunded else flag == 0)
    rows = await conn.execute(
        query.order_by(activations.c.created_at.desc(), activations.c.id.desc()).limit(limit)
    )
    return [(Activation.from_row(tuple(r)[:-1]), bool(r[-1])) for r in rows]


async def activation(conn: Conn, activation_id: int) -> Activation | None:
    row = (
        await conn.execute(select(*ACTIVATION_COLUMNS).where(activations.c.id == activation_id))
    ).first()
    return Activation.from_row(tuple(row)) if row is not None else None


_SMS_COLUMNS = (
    sms.c.id,
    sms.c.provider_id,
    sms.c.provider_sms_id,
    sms.c.phone,
    sms.c.phone_from,
    sms.c.text,
    sms.c.code,
    sms.c.activation_id,
    sms.c.received_at,
)


async def sms_of_activation(conn: Conn, activation_id: int) -> list[SmsRow]:
    rows = await conn.execute(
        select(*_SMS_COLUMNS).where(sms.c.activation_id == activation_id).order_by(sms.c.id)
    )
    return [SmsRow(*r) for r in rows]


async def unmatched_sms(
    conn: Conn, *, provider_id: int | None, since: int | None, limit: int
) -> list[SmsRow]:
    """SMS that reached no live activation, newest first."""
    query = select(*_SMS_COLUMNS).where(sms.c.activation_id.is_(None))
    if provider_id is not None:
        query = query.where(sms.c.provider_id == provider_id)
    if since is not None:
        query = query.where(sms.c.received_at >= since)
    rows = await conn.execute(query.order_by(sms.c.id.desc()).limit(limit))
    return [SmsRow(*r) for r in rows]


async def journal_of_activation(conn: Conn, activation_id: int) -> list[JournalRow]:
    rows = await conn.execute(
        select(
            journal.c.id,
            journal.c.kind,
            journal.c.debit_account_id,
            journal.c.credit_account_id,
            journal.c.amount,
            journal.c.resolves_id,
            journal.c.created_at,
            journal.c.note,
        )
        .where(journal.c.activation_id == activation_id)
        .order_by(journal.c.id)
    )
    return [JournalRow(*r) for r in rows]


async def refunded_among(conn: Conn, activation_ids: list[int]) -> set[int]:
    """Which of these activations were refunded (getHistory)."""
    if not activation_ids:
        return set()
    rows = await conn.execute(
        select(journal.c.activation_id).where(
            journal.c.kind == Kind.REFUND.value, journal.c.activation_id.in_(activation_ids)
        )
    )
    return {int(r[0]) for r in rows}
