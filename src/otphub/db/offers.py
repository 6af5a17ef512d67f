"""Statements that put things up for sale: a provider's offers and its numbers. What is
free and the claim of a number are in ``inventory.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import insert, select, update

from otphub.db.engine import Conn
from otphub.db.schema import numbers, offers


class OfferTerms(NamedTuple):
    id: int
    payout: int
    ttl: int | None


async def find_offer(
    conn: Conn, *, provider_id: int, service: str, country_id: int
) -> OfferTerms | None:
    """The offer (provider x country x service) and the terms a change may keep."""
    row = (
        await conn.execute(
            select(offers.c.id, offers.c.payout, offers.c.ttl).where(
                offers.c.provider_id == provider_id,
                offers.c.service == service,
                offers.c.country_id == country_id,
            )
        )
    ).first()
    return None if row is None else OfferTerms(int(row.id), int(row.payout), row.ttl)


async def insert_offer(
    conn: Conn,
    *,
    provider_id: int,
    service: str,
    country_id: int,
    price: int,
    payout: int,
    ttl: int | None,
) -> int:
    """A new offer; returns its id."""
    result = await conn.execute(
        insert(offers)
        .values(
            provider_id=provider_id,
            service=service,
            country_id=country_id,
            price=price,
            payout=payout,
            ttl=ttl,
        )
        .returning(offers.c.id)
    )
    return int(result.scalar_one())


class PricedOffer(NamedTuple):
    id: int
    price: int
    payout: int
    ttl: int | None


async def offers_matching(
    conn: Conn, *, service: str | None, country_id: int | None
) -> list[PricedOffer]:
    """Every offer of a service, of a country, or of both (a bulk price change), by id;
    locked on PostgreSQL until the transaction ends, so a change computed from a price
    is written over that same price."""
    query = select(offers.c.id, offers.c.price, offers.c.payout, offers.c.ttl)
    if service is not None:
        query = query.where(offers.c.service == service)
    if country_id is not None:
        query = query.where(offers.c.country_id == country_id)
    rows = await conn.execute(query.order_by(offers.c.id).with_for_update())
    return [PricedOffer(int(r.id), int(r.price), int(r.payout), r.ttl) for r in rows]


async def update_offer(
    conn: Conn, *, offer_id: int, price: int, payout: int, ttl: int | None
) -> None:
    """New terms for an offer, set by the operator: an upstream's poller no longer prices
    it (``auto_priced`` false). Whether it is enabled is left as it is."""
    await conn.execute(
        update(offers)
        .where(offers.c.id == offer_id)
        .values(price=price, payout=payout, ttl=ttl, auto_priced=False)
    )


async def add_numbers(
    conn: Conn,
    *,
    provider_id: int,
    country_id: int,
    operator: str,
    phones: Sequence[str],
    now: int,
) -> int:
    """Register the provider's numbers that it has not registered yet (the others are left
    as they are); returns how many were new."""
    known = {
        r.phone
        for r in await conn.execute(
            select(numbers.c.phone).where(
                numbers.c.provider_id == provider_id, numbers.c.phone.in_(phones)
            )
        )
    }
    fresh = list(dict.fromkeys(p for p in phones if p not in known))
    if fresh:
        await conn.execute(
            insert(numbers),
            [
                {
                    "provider_id": provider_id,
                    "country_id": country_id,
                    "operator": operator,
                    "phone": phone,
                    "created_at": now,
                }
                for phone in fresh
            ],
        )
    return len(fresh)
