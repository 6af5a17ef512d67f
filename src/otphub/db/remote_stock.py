"""Statements on remote stock: what agents and upstreams said they can hand out, the offers
that sell it, and the operator's country aliases of the SMSHub protocol.

Generic over remote kinds. A remote provider's stock counts only while the provider is
enabled and up (``down_since IS NULL``), its last poll is fresh (``polled_at`` within the
staleness window: a poller that stopped must not leave stock on sale forever), and, for an
upstream, while OTPHub's balance there pays for one more number at its cost and the offer's
price covers that cost (never sell at a loss).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, true

from otphub.db.engine import Conn
from otphub.db.schema import country_aliases, offers, providers, remote_stock
from otphub.domain.stock import StockLine


@dataclass(frozen=True, slots=True)
class PolledLine:
    """One line of a poll's answer, mapped to the catalog."""

    country_id: int
    operator: str
    service: str
    count: int
    cost: int | None = None


async def replace(conn: Conn, *, provider_id: int, lines: Iterable[PolledLine], now: int) -> int:
    """The provider's stock becomes exactly ``lines`` (call it in the transaction that marks
    the provider up). Lines repeated for one key are summed. Returns the rows written."""
    merged: dict[tuple[int, str, str], PolledLine] = {}
    for line in lines:
        key = (line.country_id, line.operator, line.service)
        before = merged.get(key)
        if before is not None:
            line = PolledLine(*key, before.count + line.count, line.cost)
        merged[key] = line
    await conn.execute(delete(remote_stock).where(remote_stock.c.provider_id == provider_id))
    rows = [
        {
            "provider_id": provider_id,
            "country_id": line.country_id,
            "operator": line.operator,
            "service": line.service,
            "count": line.count,
            "cost": line.cost,
            "polled_at": now,
        }
        for line in merged.values()
    ]
    if rows:
        await conn.execute(insert(remote_stock), rows)
    return len(rows)


async def clear(conn: Conn, *, provider_id: int) -> None:
    await conn.execute(delete(remote_stock).where(remote_stock.c.provider_id == provider_id))


@dataclass(frozen=True, slots=True)
class Freshness:
    """Polls before these moments are stale, per kind (three poll periods of that kind)."""

    agent: int
    upstream: int


def _sellable(fresh: Freshness) -> list[ColumnElement[bool]]:
    """Stock rows that count now, joined to their enabled offer and provider."""
    agent_fresh = and_(providers.c.kind == "agent", remote_stock.c.polled_at >= fresh.agent)
    upstream_fresh_and_pays = and_(
        providers.c.kind == "upstream",
        remote_stock.c.polled_at >= fresh.upstream,
        providers.c.remote_balance.is_not(None),
        remote_stock.c.cost.is_not(None),
        providers.c.remote_balance >= remote_stock.c.cost,
        offers.c.price >= remote_stock.c.cost,
    )
    return [
        offers.c.enabled == true(),
        providers.c.enabled == true(),
        providers.c.down_since.is_(None),
        remote_stock.c.count > 0,
        or_(agent_fresh, upstream_fresh_and_pays),
    ]


def _joined() -> object:
    return remote_stock.join(
        offers,
        and_(
            offers.c.provider_id == remote_stock.c.provider_id,
            offers.c.country_id == remote_stock.c.country_id,
            offers.c.service == remote_stock.c.service,
        ),
    ).join(providers, providers.c.id == remote_stock.c.provider_id)


async def lines(
    conn: Conn,
    *,
    fresh: Freshness,
    service: str | None = None,
    country_id: int | None = None,
    operators: Sequence[str] = (),
) -> list[StockLine]:
    """Remote stock per enabled offer, as the local stock's lines (one per offer; count
    summed over the operators, or over ``operators`` only)."""
    conditions = _sellable(fresh)
    if service is not None:
        conditions.append(remote_stock.c.service == service)
    if country_id is not None:
        conditions.append(remote_stock.c.country_id == country_id)
    if operators:
        conditions.append(remote_stock.c.operator.in_(list(operators)))
    query = (
        select(
            remote_stock.c.country_id,
            remote_stock.c.service,
            remote_stock.c.provider_id,
            offers.c.price,
            func.sum(remote_stock.c.count),
        )
        .select_from(_joined())  # type: ignore[arg-type]
        .where(*conditions)
        .group_by(
            remote_stock.c.country_id,
            remote_stock.c.service,
            remote_stock.c.provider_id,
            offers.c.price,
        )
        .order_by(remote_stock.c.country_id, remote_stock.c.service, offers.c.price)
    )
    return [
        StockLine(int(country), str(code), int(provider_id), int(price), int(count))
        for country, code, provider_id, price, count in await conn.execute(query)
    ]


async def per_operator(conn: Conn, *, fresh: Freshness) -> dict[tuple[int, int, str, str], int]:
    """(provider, country, operator, service) -> count, of the sellable remote stock (the
    per-operator counts of getNumbersStatus and getOperators)."""
    query = (
        select(
            remote_stock.c.provider_id,
            remote_stock.c.country_id,
            remote_stock.c.operator,
            remote_stock.c.service,
            remote_stock.c.count,
        )
        .select_from(_joined())  # type: ignore[arg-type]
        .where(*_sellable(fresh))
    )
    return {(int(p), int(c), str(o), str(s)): int(n) for p, c, o, s, n in await conn.execute(query)}


@dataclass(frozen=True, slots=True)
class RemoteOffer:
    """An offer of a remote provider with stock now: a purchase candidate."""

    id: int
    provider_id: int
    kind: str
    price: int
    payout: int
    ttl: int | None
    delivery_score: int
    # operator -> count, of the operators the customer accepts (all when none named)
    operators: dict[str, int]
    cost: int | None  # upstream: the lowest cost it priced with


async def candidates(
    conn: Conn,
    *,
    service: str,
    country_id: int,
    fresh: Freshness,
    operators: Sequence[str] = (),
    provider_ids: Sequence[int] = (),
    except_provider_ids: Sequence[int] = (),
) -> list[RemoteOffer]:
    """Remote offers with stock for a purchase, cheapest first, then the best delivery
    record (the caller merges them with the local ones and breaks ties at random)."""
    conditions = [
        *_sellable(fresh),
        remote_stock.c.service == service,
        remote_stock.c.country_id == country_id,
    ]
    if operators:
        conditions.append(remote_stock.c.operator.in_(list(operators)))
    if provider_ids:
        conditions.append(remote_stock.c.provider_id.in_(list(provider_ids)))
    if except_provider_ids:
        conditions.append(remote_stock.c.provider_id.not_in(list(except_provider_ids)))
    query = (
        select(
            offers.c.id,
            offers.c.provider_id,
            providers.c.kind,
            offers.c.price,
            offers.c.payout,
            offers.c.ttl,
            providers.c.delivery_score,
            remote_stock.c.operator,
            remote_stock.c.count,
            remote_stock.c.cost,
        )
        .select_from(_joined())  # type: ignore[arg-type]
        .where(*conditions)
        .order_by(offers.c.price, providers.c.delivery_score.desc(), offers.c.id)
    )
    found: dict[int, RemoteOffer] = {}
    for row in await conn.execute(query):
        offer = found.get(int(row.id))
        if offer is None:
            offer = found[int(row.id)] = RemoteOffer(
                id=int(row.id),
                provider_id=int(row.provider_id),
                kind=str(row.kind),
                price=int(row.price),
                payout=int(row.payout),
                ttl=row.ttl,
                delivery_score=int(row.delivery_score),
                operators={},
                cost=None if row.cost is None else int(row.cost),
            )
        elif row.cost is not None and (offer.cost is None or row.cost < offer.cost):
            offer = found[offer.id] = dataclasses.replace(offer, cost=int(row.cost))
        offer.operators[str(row.operator)] = int(row._mapping["count"])
    return list(found.values())


async def delivery_scores(conn: Conn, provider_ids: Sequence[int]) -> dict[int, int]:
    if not provider_ids:
        return {}
    rows = await conn.execute(
        select(providers.c.id, providers.c.delivery_score).where(
            providers.c.id.in_(list(provider_ids))
        )
    )
    return {int(i): int(s) for i, s in rows}


async def any_remote_provider(conn: Conn) -> bool:
    """Whether any provider is remote (a purchase then takes the path that can call out)."""
    found = await conn.execute(select(providers.c.id).where(providers.c.kind != "local").limit(1))
    return found.first() is not None


# ---------------------------------------------------------------- country aliases


async def aliases(conn: Conn) -> dict[str, int]:
    rows = await conn.execute(
        select(country_aliases.c.name, country_aliases.c.country_id).order_by(
            country_aliases.c.name
        )
    )
    return {str(n): int(c) for n, c in rows}


async def add_alias(conn: Conn, *, name: str, country_id: int) -> bool:
    """``False`` when the alias exists already."""
    found = await conn.execute(select(country_aliases.c.name).where(country_aliases.c.name == name))
    if found.first() is not None:
        return False
    await conn.execute(insert(country_aliases).values(name=name, country_id=country_id))
    return True


async def remove_alias(conn: Conn, *, name: str) -> bool:
    result = await conn.execute(delete(country_aliases).where(country_aliases.c.name == name))
    return result.rowcount == 1
