"""Offers and numbers: what providers put up for sale."""

from __future__ import annotations

import re
from collections.abc import Sequence

from otphub import metrics
from otphub.db import inventory as db_inventory
from otphub.db import offers, providers, schedules
from otphub.db.engine import Conn
from otphub.domain import errors
from otphub.domain.phones import normalize_phone
from otphub.services.operator_actions import SHELL, Actor, record
from otphub.services.runtime import Runtime

_OPERATOR = re.compile(r"[a-z0-9_]{1,32}")


def normalize_operator(raw: str | None) -> str:
    operator = (raw or "any").strip().lower()
    if not _OPERATOR.fullmatch(operator):
        raise errors.InvalidInput(f"malformed operator name: {raw!r}")
    return operator


async def _require_provider(conn: Conn, provider_id: int) -> None:
    if not await providers.exists(conn, provider_id):
        raise errors.NotFound(f"no provider with id {provider_id}")


def _require_catalog(rt: Runtime, *, service: str | None, country_id: int) -> None:
    if service is not None and service not in rt.catalog.services:
        raise errors.InvalidInput(f"unknown service code {service!r}")
    if country_id not in rt.catalog.countries:
        raise errors.InvalidInput(f"unknown country id {country_id}")


def _check_terms(price: int, payout: int | None, ttl: int | None) -> None:
    if price <= 0:
        raise errors.InvalidAmount("the price must be positive")
    if payout is not None and not 0 <= payout <= price:
        raise errors.InvalidAmount("the payout must be between 0 and the price")
    if ttl is not None and not 0 < ttl <= 30 * 24 * 3600:
        raise errors.InvalidInput("the activation lifetime must be 1 s to 30 days")


async def set_offer(
    rt: Runtime,
    *,
    provider_id: int,
    service: str,
    country_id: int,
    price: int,
    payout: int | None = None,
    ttl: int | None = None,
    by: Actor = SHELL,
) -> int:
    """Create or change the offer (provider x country x service). A new offer without a
    payout pays the provider the whole price; a changed one keeps its payout, its lifetime
    and whether it is enabled unless given. Live activations keep the price they were
    bought at. Recorded as ``by``'s change."""
    _require_catalog(rt, service=service, country_id=country_id)
    _check_terms(price, payout, ttl)
    async with rt.db.write() as conn:
        await _require_provider(conn, provider_id)
        existing = await offers.find_offer(
            conn, provider_id=provider_id, service=service, country_id=country_id
        )
        if existing is None:
            offer_id = await offers.insert_offer(
                conn,
                provider_id=provider_id,
                service=service,
                country_id=country_id,
                price=price,
                payout=price if payout is None else payout,
                ttl=ttl,
            )
        else:
            offer_id = existing.id
            payout = await _change(rt, conn, existing, price=price, payout=payout, ttl=ttl)
        await record(
            rt,
            conn,
            by,
            "offer.set",
            f"offer {offer_id}",
            provider=provider_id,
            service=service,
            country=country_id,
            price=price,
            payout=price if payout is None else payout,
        )
        return offer_id


async def _change(
    rt: Runtime,
    conn: Conn,
    existing: offers.OfferTerms,
    *,
    price: int,
    payout: int | None,
    ttl: int | None,
) -> int:
    """New terms for an existing offer; returns the payout it has now."""
    # Resetting an omitted payout to the whole price silently made the operator's
    # margin zero: keep it, and refuse where it no longer fits the new price.
    kept = existing.payout if payout is None else payout
    if kept > price:
        raise errors.InvalidAmount(
            f"offer {existing.id}'s payout {rt.money.format(kept)} is above the new price "
            f"{rt.money.format(price)}: give --payout"
        )
    await offers.update_offer(
        conn,
        offer_id=existing.id,
        price=price,
        payout=kept,
        ttl=existing.ttl if ttl is None else ttl,
    )
    return kept


# A bulk change in percent: at most -99 % (a price stays positive) and +1000 %.
MIN_PERCENT_BP, MAX_PERCENT_BP = -9900, 100000


async def set_prices(
    rt: Runtime,
    *,
    service: str | None = None,
    country_id: int | None = None,
    price: int | None = None,
    percent_bp: int | None = None,
    by: Actor = SHELL,
) -> list[int]:
    """Change the price of every offer of a service, of a country, or of both, at once: to
    ``price``, or by ``percent_bp`` hundredths of a percent (rounded to the nearest minor
    unit, never below one). Payouts are kept, under the same rule as ``set_offer``: one
    offer whose payout would be above its new price refuses the whole change. One
    transaction; returns the ids of the offers changed."""
    if service is None and country_id is None:
        raise errors.InvalidInput("give a service, a country or both")
    if service is not None and service not in rt.catalog.services:
        raise errors.InvalidInput(f"unknown service code {service!r}")
    if country_id is not None:
        _require_catalog(rt, service=None, country_id=country_id)
    if (price is None) == (percent_bp is None):
        raise errors.InvalidInput("give either a new price or a percent change")
    if percent_bp is not None and not MIN_PERCENT_BP <= percent_bp <= MAX_PERCENT_BP:
        raise errors.InvalidInput("a percent change must be -99 % to +1000 %")
    if price is not None:
        _check_terms(price, None, None)
    async with rt.db.write() as conn:
        matching = await offers.offers_matching(conn, service=service, country_id=country_id)
        if not matching:
            raise errors.NotFound("no offer matches")
        for offer in matching:
            new = price if price is not None else _scaled(offer.price, percent_bp or 0)
            await _change(
                rt,
                conn,
                offers.OfferTerms(offer.id, offer.payout, offer.ttl),
                price=new,
                payout=None,
                ttl=None,
            )
        await record(
            rt,
            conn,
            by,
            "offer.bulk_price",
            " ".join(
                f"{what} {value}"
                for what, value in (("service", service), ("country", country_id))
                if value is not None
            ),
            price=price,
            percent_bp=percent_bp,
            offers=[o.id for o in matching],
        )
    return [o.id for o in matching]


def _scaled(price: int, percent_bp: int) -> int:
    # Integer arithmetic, half up: (price * (10000 + bp) + 5000) // 10000.
    return max(1, (price * (10000 + percent_bp) + 5000) // 10000)


async def add_numbers(
    rt: Runtime,
    *,
    provider_id: int,
    country_id: int,
    phones: Sequence[str],
    operator: str | None = None,
    by: Actor = SHELL,
) -> int:
    """Register numbers of a provider; numbers it registered already are left as they are.
    Returns how many were new. Recorded as ``by``'s change (how many, not which)."""
    _require_catalog(rt, service=None, country_id=country_id)
    normalized = [normalize_phone(p) for p in phones]
    if not normalized:
        raise errors.InvalidInput("no phone numbers given")
    prefix = rt.catalog.countries[country_id].phone_prefix
    for phone in normalized:
        if not phone.startswith(prefix):
            raise errors.InvalidInput(
                f"{phone} does not start with the country code {prefix} of country {country_id}"
            )
    op_name = normalize_operator(operator)
    now = rt.clock.now()
    async with rt.db.write() as conn:
        await _require_provider(conn, provider_id)
        added = await offers.add_numbers(
            conn,
            provider_id=provider_id,
            country_id=country_id,
            operator=op_name,
            phones=normalized,
            now=now,
        )
        await record(
            rt,
            conn,
            by,
            "number.add",
            f"provider {provider_id}",
            country=country_id,
            operator=op_name,
            given=len(normalized),
            added=added,
        )
        return added


# How far back a provider's delivery record looks.
DELIVERY_WINDOW = 7 * 24 * 3600
SCORE_REFRESH_SECONDS = 60


async def refresh_delivery_scores(rt: Runtime, *, every: int = SCORE_REFRESH_SECONDS) -> bool:
    """Recompute the providers' delivery records (success rate and median time to the
    first SMS, which order offers of equal price) if it is this process's turn: one process
    of the whole fleet does it per ``every`` seconds. ``True`` if this call did it."""
    async with rt.db.write() as conn:
        now = rt.clock.now()
        if not await schedules.claim_turn(
            conn, is_sqlite=rt.db.is_sqlite, job="delivery_scores", now=now, every=every
        ):
            return False
        await db_inventory.refresh_delivery_scores(
            conn, since=now - DELIVERY_WINDOW, is_sqlite=rt.db.is_sqlite
        )
    metrics.BACKGROUND_RUNS.labels("delivery_scores").inc()
    return True


async def services_offered(rt: Runtime, *, country_id: int) -> set[str]:
    """Codes of the services with an enabled offer of an enabled provider in the country."""
    async with rt.db.read() as conn:
        return await db_inventory.services_offered(conn, country_id=country_id)


async def operators(rt: Runtime, *, country_id: int | None) -> dict[int, list[str]]:
    """Named operators of online numbers, per country (of one country, if given)."""
    async with rt.db.read() as conn:
        return await db_inventory.operators(conn, country_id=country_id)
