"""Every statement that reads or changes stock: which numbers are free, and claiming one.

A number is free for a service when it is online, has no live activation (``in_use``), was
never finished for that service, and is not retired for it (``retired_numbers``: cancelled
OTPHUB_MAX_CANCELS times for it); for one buyer, also when that buyer never cancelled it for
that service (the cancelled-numbers rule, README). The claim is one compare-and-set UPDATE; on
PostgreSQL its inner SELECT takes the row with ``FOR UPDATE SKIP LOCKED`` so concurrent
buyers pass each other instead of queueing on the same row. On SQLite the whole purchase
runs under ``BEGIN IMMEDIATE``. The partial unique index on live activations backs both.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Update,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)

from otphub.db import states
from otphub.db.activations import IS_CANCELLED, IS_FINISHED
from otphub.db.engine import Conn, insert_or_nothing, run
from otphub.db.schema import activations, numbers, offers, providers, retired_numbers, sms
from otphub.domain.activation import ENDED_STATES, State

# The filters and stock lines are plain values shared with the layers above: they live in
# the domain, and are read from here too.
from otphub.domain.stock import ANY_NUMBER as ANY_NUMBER
from otphub.domain.stock import NumberFilter as NumberFilter
from otphub.domain.stock import StockLine as StockLine


@dataclass(frozen=True, slots=True)
class OfferFilter:
    service: str
    country_id: int
    provider_ids: tuple[int, ...] = ()  # empty = any
    except_provider_ids: tuple[int, ...] = ()
    # The buyer: a number this customer cancelled for this service is not offered to them.
    customer_id: int | None = None  # None: no buyer (a stock count, a query plan)


@dataclass(frozen=True, slots=True)
class Offer:
    id: int
    provider_id: int
    provider_account_id: int
    price: int
    payout: int
    ttl: int | None  # None: the deployment's OTPHUB_ACTIVATION_TTL


@dataclass(frozen=True, slots=True)
class ClaimedNumber:
    id: int
    phone: str
    operator: str


def _never_finished_for(service: ColumnElement[str]) -> ColumnElement[bool]:
    # correlate_except: this EXISTS sits two levels deep in offers_with_stock, and must
    # correlate to both the numbers and the offers of the enclosing queries. IS_FINISHED
    # is written out so that SQLite uses the partial index on finished activations: with
    # the state as a bound parameter it did not, and the purchase's stock check took 200 µs
    # instead of 22.
    return not_(
        exists()
        .where(
            activations.c.number_id == numbers.c.id,
            activations.c.service == service,
            IS_FINISHED,
        )
        .correlate_except(activations)
    )


def _not_cancelled_by_buyer(service: ColumnElement[str]) -> ColumnElement[bool]:
    # The buyer is a bound parameter (``want_customer_id``); NULL matches no activation.
    # IS_CANCELLED is written out, as IS_FINISHED above, so that SQLite uses the partial
    # index on cancelled activations (number_id, service, customer_id).
    return not_(
        exists()
        .where(
            activations.c.number_id == numbers.c.id,
            activations.c.service == service,
            activations.c.customer_id == bindparam("want_customer_id", type_=Integer),
            IS_CANCELLED,
        )
        .correlate_except(activations)
    )


def _not_retired_for(service: ColumnElement[str]) -> ColumnElement[bool]:
    # One lookup in the primary key (number_id, service).
    return not_(
        exists()
        .where(retired_numbers.c.number_id == numbers.c.id, retired_numbers.c.service == service)
        .correlate_except(retired_numbers)
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a purchase's statements depend on besides bound values: which filters are set
    (the values of list filters are expanding parameters), and how many phone prefixes are
    excluded (one LIKE each)."""

    operators: bool
    excluded_prefixes: int
    provider_ids: bool
    except_provider_ids: bool

    @classmethod
    def of(cls, offer_filter: OfferFilter, wanted: NumberFilter) -> _Shape:
        return cls(
            operators=bool(wanted.operators),
            excluded_prefixes=len(wanted.excluded_prefixes),
            provider_ids=bool(offer_filter.provider_ids),
            except_provider_ids=bool(offer_filter.except_provider_ids),
        )


def _purchase_params(offer_filter: OfferFilter, wanted: NumberFilter) -> dict[str, object]:
    # "want_": an UPDATE may not bind a parameter named like a column of its table.
    params: dict[str, object] = {
        "want_service": offer_filter.service,
        "want_country_id": offer_filter.country_id,
        "want_customer_id": offer_filter.customer_id,
        "operators": list(wanted.operators),
        "provider_ids": list(offer_filter.provider_ids),
        "except_provider_ids": list(offer_filter.except_provider_ids),
    }
    # Prefixes are digits only (parse_phone_exceptions), so LIKE needs no escaping.
    for i, prefix in enumerate(wanted.excluded_prefixes):
        params[f"prefix_{i}"] = prefix + "%"
    return params


def _free_number(
    *,
    provider_id: ColumnElement[int],
    country_id: ColumnElement[int],
    service: ColumnElement[str],
    shape: _Shape,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        numbers.c.provider_id == provider_id,
        numbers.c.country_id == country_id,
        numbers.c.online == true(),
        numbers.c.in_use == false(),
        _never_finished_for(service),
        _not_retired_for(service),
        _not_cancelled_by_buyer(service),
    ]
    if shape.operators:
        conditions.append(numbers.c.operator.in_(bindparam("operators", expanding=True)))
    if shape.excluded_prefixes:
        conditions.append(
            not_(
                or_(
                    *(
                        numbers.c.phone.like(bindparam(f"prefix_{i}", type_=String))
                        for i in range(shape.excluded_prefixes)
                    )
                )
            )
        )
    return conditions


# Statements are built once per shape and reused: building and fingerprinting a
# SQLAlchemy statement costs more than SQLite takes to run it. The cache is bounded: the
# number of excluded prefixes is the only open-ended part of a shape.
@functools.lru_cache(maxsize=256)
def _offers_statement(shape: _Shape) -> Select[Any]:
    # "Has a free number" as a scalar subquery with LIMIT 1, looked up per offer through
    # the claim index. Written as EXISTS, PostgreSQL turned it into a semi-join that read
    # every number of the country (16 ms per purchase at 100,000 numbers).
    has_free_number = (
        select(numbers.c.id)
        .where(
            *_free_number(
                provider_id=offers.c.provider_id,
                country_id=offers.c.country_id,
                service=offers.c.service,
                shape=shape,
            )
        )
        .limit(1)
        .correlate_except(numbers)
        .scalar_subquery()
        .is_not(None)
    )
    conditions: list[ColumnElement[bool]] = [
        offers.c.service == bindparam("want_service", type_=String),
        offers.c.country_id == bindparam("want_country_id", type_=Integer),
        offers.c.enabled == true(),
        providers.c.enabled == true(),
        has_free_number,
    ]
    if shape.provider_ids:
        conditions.append(offers.c.provider_id.in_(bindparam("provider_ids", expanding=True)))
    if shape.except_provider_ids:
        conditions.append(
            offers.c.provider_id.not_in(bindparam("except_provider_ids", expanding=True))
        )
    return (
        select(
            offers.c.id,
            offers.c.provider_id,
            providers.c.account_id,
            offers.c.price,
            offers.c.payout,
            offers.c.ttl,
        )
        .join(providers, providers.c.id == offers.c.provider_id)
        .where(*conditions)
        # Among equal prices: the better delivery record, then the faster first SMS (a
        # provider without one yet last), then at random (README "How OTPHub chooses among offers").
        .order_by(
            offers.c.price,
            providers.c.delivery_score.desc(),
            providers.c.sms_seconds.asc().nulls_last(),
            func.random(),
        )
    )


@functools.lru_cache(maxsize=256)
def _claim_statement(shape: _Shape) -> Update:
    candidate = (
        select(numbers.c.id)
        .where(
            *_free_number(
                provider_id=bindparam("want_provider_id", type_=Integer),
                country_id=bindparam("want_country_id", type_=Integer),
                service=bindparam("want_service", type_=String),
                shape=shape,
            )
        )
        .order_by(numbers.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(numbers)
        .where(numbers.c.id == candidate, numbers.c.in_use == false())
        .values(in_use=true())
        .returning(numbers.c.id, numbers.c.phone, numbers.c.operator)
    )


async def offers_with_stock(
    conn: Conn, offer_filter: OfferFilter, number_filter: NumberFilter
) -> list[Offer]:
    """Matching offers that have a free number for the buyer: cheapest first, then the
    provider with the best delivery record, then the fastest first SMS, then at random."""
    found = await run(
        conn,
        _offers_statement(_Shape.of(offer_filter, number_filter)),
        _purchase_params(offer_filter, number_filter),
    )
    return [
        Offer(
            id=offer_id,
            provider_id=provider_id,
            provider_account_id=account_id,
            price=price,
            payout=payout,
            ttl=ttl,
        )
        for offer_id, provider_id, account_id, price, payout, ttl in found.rows
    ]


async def claim_number(
    conn: Conn, *, offer: Offer, offer_filter: OfferFilter, wanted: NumberFilter
) -> ClaimedNumber | None:
    """Take one free number of the offer; ``None`` if another buyer took the last one."""
    params = _purchase_params(offer_filter, wanted)
    params["want_provider_id"] = offer.provider_id
    row = (await run(conn, _claim_statement(_Shape.of(offer_filter, wanted)), params)).first()
    if row is None:
        return None
    number_id, phone, operator = row
    return ClaimedNumber(id=number_id, phone=phone, operator=operator)


# true()/false() are written into the SQL: a bound boolean would be converted at every
# execution, which keeps a statement off the driver's direct path (see engine.run).
_FREE_AGAIN = update(numbers).where(numbers.c.id == bindparam("number_id")).values(in_use=false())


async def free_number_again(conn: Conn, number_id: int) -> None:
    """The number's activation ended: it may be sold again (for other services, or for the
    same one if it was cancelled: to other customers, until it is retired for it)."""
    await run(conn, _FREE_AGAIN, {"number_id": number_id})


# Cancelled activations of a number for a service, of every customer: a prefix of the
# partial index on cancelled activations (IS_CANCELLED written out for SQLite).
_CANCELS_OF_NUMBER = (
    select(func.count())
    .select_from(activations)
    .where(
        activations.c.number_id == bindparam("number_id"),
        activations.c.service == bindparam("service"),
        IS_CANCELLED,
    )
)
_RETIRE = insert_or_nothing(retired_numbers, conflict_on=["number_id", "service"])


async def note_cancel(
    conn: Conn, *, is_sqlite: bool, number_id: int, service: str, max_cancels: int, now: int
) -> bool:
    """An activation of the number for the service was just cancelled (in this transaction,
    which holds the number: it has at most one live activation). Retire the number for the
    service at ``max_cancels`` cancels (0: never). ``True``: the number is retired for the
    service, so it must not be offered for it again (an agent's FINISH_ACTIVATION 1)."""
    if max_cancels <= 0:
        return False
    found = await run(conn, _CANCELS_OF_NUMBER, {"number_id": number_id, "service": service})
    if int(found.scalar_one()) < max_cancels:
        return False
    # Retired already (e.g. while this activation was live): the insert does nothing.
    await run(
        conn,
        _RETIRE[is_sqlite],
        {"number_id": number_id, "service": service, "retired_at": now},
    )
    return True


async def stock(
    conn: Conn,
    *,
    service: str | None = None,
    country_id: int | None = None,
    wanted: NumberFilter = ANY_NUMBER,
    provider_id: int | None = None,
) -> Sequence[StockLine]:
    """Free numbers per enabled offer (provider x country x service), of one provider if
    ``provider_id`` is given; offers without stock are left out.

    Counted as free(provider, country) - spent(provider, country, service): one pass over
    the numbers and one over finished activations (plus the few retired numbers), then
    arithmetic per offer. Joining every offer to its numbers instead costs offers x numbers,
    which at 500 services and 100,000 numbers is hundreds of millions of row visits.
    """
    number_conditions: list[ColumnElement[bool]] = [
        numbers.c.online == true(),
        numbers.c.in_use == false(),
    ]
    if country_id is not None:
        number_conditions.append(numbers.c.country_id == country_id)
    if provider_id is not None:
        number_conditions.append(numbers.c.provider_id == provider_id)
    if wanted.operators:
        number_conditions.append(numbers.c.operator.in_(wanted.operators))
    if wanted.excluded_prefixes:
        number_conditions.append(
            not_(
                or_(
                    *(
                        numbers.c.phone.startswith(p, autoescape=True)
                        for p in wanted.excluded_prefixes
                    )
                )
            )
        )
    free: dict[tuple[int, int], int] = {
        (r.provider_id, r.country_id): r.free
        for r in await conn.execute(
            select(numbers.c.provider_id, numbers.c.country_id, func.count().label("free"))
            .where(*number_conditions)
            .group_by(numbers.c.provider_id, numbers.c.country_id)
        )
    }
    spent_query = (
        select(
            numbers.c.provider_id,
            numbers.c.country_id,
            activations.c.service,
            func.count().label("spent"),
        )
        .join(numbers, numbers.c.id == activations.c.number_id)
        .where(IS_FINISHED, *number_conditions)
        .group_by(numbers.c.provider_id, numbers.c.country_id, activations.c.service)
    )
    if service is not None:
        spent_query = spent_query.where(activations.c.service == service)
    spent: dict[tuple[int, int, str], int] = {
        (r.provider_id, r.country_id, r.service): r.spent for r in await conn.execute(spent_query)
    }
    # Retired pairs are spent too, so that no answer advertises them.
    for (provider_id, country, service_code), count in (
        await _retired_free(conn, number_conditions, service=service)
    ).items():
        key = (provider_id, country, service_code)
        spent[key] = spent.get(key, 0) + count
    offer_conditions: list[ColumnElement[bool]] = [
        offers.c.enabled == true(),
        providers.c.enabled == true(),
    ]
    if service is not None:
        offer_conditions.append(offers.c.service == service)
    if country_id is not None:
        offer_conditions.append(offers.c.country_id == country_id)
    if provider_id is not None:
        offer_conditions.append(offers.c.provider_id == provider_id)
    lines: list[StockLine] = []
    offered = await conn.execute(
        select(offers.c.country_id, offers.c.service, offers.c.provider_id, offers.c.price)
        .join(providers, providers.c.id == offers.c.provider_id)
        .where(*offer_conditions)
        .order_by(offers.c.country_id, offers.c.service, offers.c.price)
    )
    # Unpacked by position: one line per offer, tens of thousands of them.
    for country, service_code, provider_id, price in offered:
        count = free.get((provider_id, country), 0) - spent.get(
            (provider_id, country, service_code), 0
        )
        if count > 0:
            lines.append(StockLine(country, service_code, provider_id, price, count))
    return lines


def _retired_not_finished() -> ColumnElement[bool]:
    # A pair finished for the service is counted as spent already. (A retired number is
    # never sold for its service again, so it cannot be finished for it afterwards; this
    # keeps the count right whatever retired it.)
    return not_(
        exists()
        .where(
            activations.c.number_id == retired_numbers.c.number_id,
            activations.c.service == retired_numbers.c.service,
            IS_FINISHED,
        )
        .correlate_except(activations)
    )


async def _retired_free(
    conn: Conn,
    number_conditions: list[ColumnElement[bool]],
    *,
    service: str | None,
    by_operator: bool = False,
) -> dict[tuple[Any, ...], int]:
    """Free numbers retired for a service (and not finished for it), per (provider,
    country[, operator], service): a small table, read whole."""
    grouped = [numbers.c.provider_id, numbers.c.country_id]
    if by_operator:
        grouped.append(numbers.c.operator)
    grouped_by = [*grouped, retired_numbers.c.service]
    query = (
        select(*grouped_by, func.count())
        .join(numbers, numbers.c.id == retired_numbers.c.number_id)
        .where(*number_conditions, _retired_not_finished())
        .group_by(*grouped_by)
    )
    if service is not None:
        query = query.where(retired_numbers.c.service == service)
    return {tuple(row[:-1]): int(row[-1]) for row in await conn.execute(query)}


@dataclass(frozen=True, slots=True)
class OperatorCount:
    """The free numbers per operator (``operator_count``): with the stock's lines, what a
    process caches to answer getNumbersStatus with ``operator`` and getOperators, each of
    which otherwise reads every number of a country (of all countries)."""

    # (provider, country, operator) -> free numbers
    free: dict[tuple[int, int, str], int]
    # (provider, country, operator, service) -> free numbers already finished for the
    # service, or retired for it
    spent: dict[tuple[int, int, str, str], int]
    # country -> named operators of its online numbers, sorted (getOperators)
    operators: dict[int, list[str]]
    # Remote stock (issue 9), counted per service by the provider itself:
    # (provider, country, operator, service) -> count
    per_service: dict[tuple[int, int, str, str], int] = field(default_factory=dict)


async def operator_count(conn: Conn) -> OperatorCount:
    """``stock()``'s two passes (numbers, finished activations) grouped by operator too, and
    the operators of every country. A pass of its own, made only for the requests that need
    it: the operator is not in the numbers' indexes, so it reads the table (170 ms at
    100,000 numbers on SQLite, against 15 ms for the free numbers per provider and country).
    """
    free: dict[tuple[int, int, str], int] = {}
    named: dict[int, set[str]] = {}
    # Busy numbers too: getOperators lists the operators of every online number.
    for provider_id, country, operator, in_use, count in await conn.execute(
        select(
            numbers.c.provider_id,
            numbers.c.country_id,
            numbers.c.operator,
            numbers.c.in_use,
            func.count(),
        )
        .where(numbers.c.online == true())
        .group_by(numbers.c.provider_id, numbers.c.country_id, numbers.c.operator, numbers.c.in_use)
    ):
        if operator != "any":
            named.setdefault(country, set()).add(operator)
        if not in_use:
            free[(provider_id, country, operator)] = count
    spent: dict[tuple[int, int, str, str], int] = {
        (provider_id, country, operator, service): count
        for provider_id, country, operator, service, count in await conn.execute(
            select(
                numbers.c.provider_id,
                numbers.c.country_id,
                numbers.c.operator,
                activations.c.service,
                func.count(),
            )
            .join(numbers, numbers.c.id == activations.c.number_id)
            .where(IS_FINISHED, numbers.c.online == true(), numbers.c.in_use == false())
            .group_by(
                numbers.c.provider_id,
                numbers.c.country_id,
                numbers.c.operator,
                activations.c.service,
            )
        )
    }
    online_free = [numbers.c.online == true(), numbers.c.in_use == false()]
    retired = await _retired_free(conn, online_free, service=None, by_operator=True)
    for (provider_id, country, operator, service), count in retired.items():
        key = (provider_id, country, operator, service)
        spent[key] = spent.get(key, 0) + count
    return OperatorCount(
        free=free,
        spent=spent,
        operators={country: sorted(named[country]) for country in sorted(named)},
    )


async def operators(conn: Conn, *, country_id: int | None) -> dict[int, list[str]]:
    """Named operators of online numbers, per country."""
    query = (
        select(numbers.c.country_id, numbers.c.operator)
        .where(numbers.c.online == true(), numbers.c.operator != "any")
        .distinct()
        .order_by(numbers.c.country_id, numbers.c.operator)
    )
    if country_id is not None:
        query = query.where(numbers.c.country_id == country_id)
    found: dict[int, list[str]] = {}
    for row in await conn.execute(query):
        found.setdefault(int(row.country_id), []).append(str(row.operator))
    return found


async def services_offered(conn: Conn, *, country_id: int) -> set[str]:
    query = (
        select(offers.c.service)
        .join(providers, providers.c.id == offers.c.provider_id)
        .where(
            offers.c.country_id == country_id,
            offers.c.enabled == true(),
            providers.c.enabled == true(),
        )
        .distinct()
    )
    return {str(r.service) for r in await conn.execute(query)}


def median_seconds_to_sms(
    provider_id: ColumnElement[int],
    *,
    is_sqlite: bool,
    since: int | None = None,
    until: int | None = None,
) -> ColumnElement[int]:
    """The median of (first SMS - purchase), in whole seconds rounded down, over the
    provider's activations bought in [since, until) that got an SMS; NULL without one. A
    scalar subquery, correlated to ``provider_id`` when that is a column of the enclosing
    statement. PostgreSQL has ``percentile_cont``; SQLite has no median, so the middle one
    or two rows are picked by rank (the same value: the mean of the two middle ones).
    """
    first_sms = (
        select(func.min(sms.c.received_at))
        .where(sms.c.activation_id == activations.c.id)
        .scalar_subquery()
    )
    seconds = first_sms - activations.c.created_at
    conditions: list[ColumnElement[bool]] = [
        activations.c.provider_id == provider_id,
        activations.c.sms_at.is_not(None),  # set by the first SMS, never cleared
    ]
    if since is not None:
        conditions.append(activations.c.created_at >= since)
    if until is not None:
        conditions.append(activations.c.created_at < until)
    if not is_sqlite:
        median = func.percentile_cont(0.5).within_group(seconds)
        return (
            select(cast(func.floor(median), Integer))
            .where(*conditions)
            .correlate(providers)
            .scalar_subquery()
        )
    times = select(seconds.label("s")).where(*conditions).correlate(providers).subquery()
    ranked = select(
        times.c.s,
        func.row_number().over(order_by=times.c.s).label("rank"),
        func.count().over().label("n"),
    ).subquery()
    return (
        select(func.sum(ranked.c.s) // func.count())
        .where(ranked.c.rank.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))
        .scalar_subquery()
    )


async def refresh_delivery_scores(conn: Conn, *, since: int, is_sqlite: bool) -> None:
    """Recompute every provider's delivery record from its activations bought since
    ``since``: finished per ended, in per mille, with one success and one failure added so
    that a provider without history stands at 500 and one sale does not make it perfect;
    and the median seconds from purchase to the first SMS (``sms_seconds``), which breaks
    ties between equal records. One UPDATE of the few provider rows, each reading its own
    activations of the window through (provider_id, created_at)."""
    ended = activations.c.state.in_(states.values(ENDED_STATES))
    finished = func.count(case((activations.c.state == State.FINISHED.value, 1)))
    score = (
        select((finished + 1) * 1000 // (func.count() + 2))
        .where(
            activations.c.provider_id == providers.c.id,
            activations.c.created_at >= since,
            ended,
        )
        .scalar_subquery()
    )
    await conn.execute(
        update(providers).values(
            delivery_score=score,
            sms_seconds=median_seconds_to_sms(providers.c.id, is_sqlite=is_sqlite, since=since),
        )
    )
