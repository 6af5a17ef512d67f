"""Statements of the upstream providers (services/upstreams.py and its poller and
follower): their stock and costs, their auto-priced offers, their balance there, and the
live activations bought there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, select, update

from otphub.db import states
from otphub.db.activations import ACTIVATION_COLUMNS
from otphub.db.engine import Conn
from otphub.db.schema import activations, offers, providers, remote_stock, sms
from otphub.domain.activation import LIVE_STATES, Activation

UPSTREAM = "upstream"


@dataclass(frozen=True, slots=True)
class StockLine:
    country_id: int
    service: str
    count: int
    cost: int


async def set_balance(conn: Conn, provider_id: int, *, balance: int) -> None:
    await conn.execute(
        update(providers).where(providers.c.id == provider_id).values(remote_balance=balance)
    )


async def replace_stock(
    conn: Conn, provider_id: int, lines: Sequence[StockLine], *, now: int
) -> None:
    """The provider's stock is exactly ``lines`` (operator ``any``: the protocol's prices
    do not split by operator)."""
    await clear_stock(conn, provider_id)
    if lines:
        await conn.execute(
            insert(remote_stock),
            [
                {
                    "provider_id": provider_id,
                    "country_id": line.country_id,
                    "operator": "any",
                    "service": line.service,
                    "count": line.count,
                    "cost": line.cost,
                    "polled_at": now,
                }
                for line in lines
            ],
        )


async def clear_stock(conn: Conn, provider_id: int) -> None:
    await conn.execute(delete(remote_stock).where(remote_stock.c.provider_id == provider_id))


@dataclass(frozen=True, slots=True)
class Priced:
    """An offer's terms as the markup makes them."""

    country_id: int
    service: str
    price: int
    payout: int


@dataclass(frozen=True, slots=True)
class PricingResult:
    created: int
    changed: int
    explicit: int  # offers the operator set: left alone


_UPDATE_AUTO = (
    update(offers)
    .where(offers.c.id == bindparam("offer_id"), offers.c.auto_priced.is_(True))
    .values(price=bindparam("new_price"), payout=bindparam("new_payout"))
)


async def auto_price(conn: Conn, provider_id: int, priced: Sequence[Priced]) -> PricingResult:
    """Create or reprice the provider's auto-priced offers; an offer the operator set
    (``auto_priced`` false) is left as it is."""
    existing = {
        (int(r.country_id), str(r.service)): r
        for r in await conn.execute(
            select(
                offers.c.id,
                offers.c.country_id,
                offers.c.service,
                offers.c.price,
                offers.c.payout,
                offers.c.auto_priced,
            ).where(offers.c.provider_id == provider_id)
        )
    }
    fresh: list[dict[str, object]] = []
    changes: list[dict[str, object]] = []
    explicit = 0
    for terms in priced:
        row = existing.get((terms.country_id, terms.service))
        if row is None:
            fresh.append(
                {
                    "provider_id": provider_id,
                    "country_id": terms.country_id,
                    "service": terms.service,
                    "price": terms.price,
                    "payout": terms.payout,
                    "auto_priced": True,
                }
            )
        elif not row.auto_priced:
            explicit += 1
        elif (int(row.price), int(row.payout)) != (terms.price, terms.payout):
            changes.append(
                {"offer_id": int(row.id), "new_price": terms.price, "new_payout": terms.payout}
            )
    if fresh:
        await conn.execute(insert(offers), fresh)
    if changes:
        await conn.execute(_UPDATE_AUTO, changes)
    return PricingResult(created=len(fresh), changed=len(changes), explicit=explicit)


async def live_activations(conn: Conn, *, limit: int = 10_000) -> list[Activation]:
    """Live activations bought at an upstream (those the follower follows), oldest first."""
    rows = await conn.execute(
        select(*ACTIVATION_COLUMNS)
        .join(providers, providers.c.id == activations.c.provider_id)
        .where(
            providers.c.kind == UPSTREAM,
            activations.c.remote_id.is_not(None),
            activations.c.state.in_(states.values(LIVE_STATES)),
        )
        .order_by(activations.c.id)
        .limit(limit)
    )
    return [Activation.from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Terms:
    """An upstream's pricing and OTPHub's balance there (provider list and show)."""

    markup_bp: int
    markup_amount: int
    remote_balance: int | None


async def terms(conn: Conn, provider_id: int | None = None) -> dict[int, Terms]:
    query = select(
        providers.c.id, providers.c.markup_bp, providers.c.markup_amount, providers.c.remote_balance
    ).where(providers.c.kind == UPSTREAM)
    if provider_id is not None:
        query = query.where(providers.c.id == provider_id)
    return {
        int(r.id): Terms(r.markup_bp or 0, r.markup_amount or 0, r.remote_balance)
        for r in await conn.execute(query)
    }


async def stock_of(conn: Conn, provider_id: int) -> list[StockLine]:
    """The provider's stock rows (tests and reports)."""
    rows = await conn.execute(
        select(
            remote_stock.c.country_id,
            remote_stock.c.service,
            remote_stock.c.count,
            remote_stock.c.cost,
        )
        .where(remote_stock.c.provider_id == provider_id)
        .order_by(remote_stock.c.country_id, remote_stock.c.service)
    )
    return [StockLine(int(c), str(s), int(n), int(cost)) for c, s, n, cost in rows]


async def matched_sms(conn: Conn, activation_id: int) -> int:
    """How many SMS an activation has had."""
    found = await conn.execute(
        select(func.count()).select_from(sms).where(sms.c.activation_id == activation_id)
    )
    return int(found.scalar_one())
