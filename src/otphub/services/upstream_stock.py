"""What an upstream service has for sale, and at what price OTPHub resells it.

Every ``OTPHUB_UPSTREAM_POLL_SECONDS``, once per period for the whole fleet per provider
(a turn claimed in ``schedules``), OTPHub reads its balance and its prices there, outside
any transaction, then in one transaction: the provider's ``remote_stock`` rows are
replaced (cost in minor units; a cost finer than the currency is refused for its line,
never rounded), the provider is marked up with its balance, and its auto-priced offers
get ``price = markup_price(cost, ...)`` and ``payout = cost`` (the upstream's cost is what
the ledger owes that provider; the operator's margin is the rest). An offer the operator
set (``otphub offer set``) is left alone. A poll that fails marks the provider down and
takes its stock away until a poll succeeds.

The purchase side (services/remote_purchase.py) sells a line only while the provider is
up, its balance there pays the line's cost, and the offer's price covers it.
"""

from __future__ import annotations

import asyncio

import structlog

from otphub import metrics
from otphub.db import providers, schedules
from otphub.db import upstreams as upstream_db
from otphub.domain.supply import ProviderKind, RemoteProvider, SupplierFailure, markup_price
from otphub.services import suppliers, upstreams
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.upstream_stock")

# An upstream's markup and OTPHub's balance there, as ``terms`` reads them.
Terms = upstream_db.Terms


def _job(provider_id: int) -> str:
    return f"upstream_poll:{provider_id}"


async def _my_turn(rt: Runtime, provider_id: int) -> bool:
    # Claimed in a transaction of its own: the poll's calls happen outside any
    # transaction, and a failed poll keeps its turn (it marks the provider down; the next
    # period tries again).
    async with rt.db.write() as conn:
        return await schedules.claim_turn(
            conn,
            is_sqlite=rt.db.is_sqlite,
            job=_job(provider_id),
            now=rt.clock.now(),
            every=max(1, round(rt.settings.upstream_poll_seconds)),
        )


async def poll_due(rt: Runtime) -> int:
    """Poll every enabled upstream whose turn it is (all at once: a slow upstream delays
    only itself). Returns how many this call polled successfully."""
    due = [
        p
        for p in await suppliers.remote_providers(rt, kind=ProviderKind.UPSTREAM)
        if p.enabled and await _my_turn(rt, p.id)
    ]
    results = await asyncio.gather(*(poll(rt, p) for p in due))
    return sum(results)


async def poll(rt: Runtime, provider: RemoteProvider) -> bool:
    """Read the upstream's balance and prices and put them on sale (see the module)."""
    wait = upstreams.limits(rt).connect_seconds
    try:
        balance = await upstreams.get_balance(rt, provider, wait=wait)
        prices = await upstreams.get_prices(rt, provider, wait=wait)
    except SupplierFailure as exc:
        await _down(rt, provider, reason=str(exc))
        return False
    lines = [upstream_db.StockLine(p.country_id, p.service, p.count, p.cost) for p in prices.lines]
    priced = []
    for line in lines:
        price = markup_price(
            line.cost, markup_bp=provider.markup_bp, markup_amount=provider.markup_amount
        )
        if price > 0:  # a free line with no markup cannot be an offer (prices are > 0)
            priced.append(upstream_db.Priced(line.country_id, line.service, price, line.cost))
    async with rt.db.write() as conn:
        now = rt.clock.now()
        await upstream_db.replace_stock(conn, provider.id, lines, now=now)
        await providers.mark_up(conn, provider.id, now=now, balance=balance)
        result = await upstream_db.auto_price(conn, provider.id, priced)
    metrics.BACKGROUND_RUNS.labels("upstream_poll").inc()
    log.info(
        "upstream_polled",
        provider_id=provider.id,
        lines=len(lines),
        unknown=prices.unknown,
        refused=prices.refused,
        offers_created=result.created,
        offers_repriced=result.changed,
        offers_explicit=result.explicit,
    )
    return True


async def _down(rt: Runtime, provider: RemoteProvider, *, reason: str) -> None:
    log.warning("upstream_down", provider_id=provider.id, reason=reason)
    async with rt.db.write() as conn:
        await upstream_db.clear_stock(conn, provider.id)
        await providers.mark_down(conn, provider.id, now=rt.clock.now(), error=reason)


async def stock(rt: Runtime, *, provider_id: int) -> list[upstream_db.StockLine]:
    async with rt.db.read() as conn:
        return await upstream_db.stock_of(conn, provider_id)


async def terms(rt: Runtime, *, provider_id: int | None = None) -> dict[int, upstream_db.Terms]:
    """Markup and balance there of the upstream providers (of one), by id."""
    async with rt.db.read() as conn:
        return await upstream_db.terms(conn, provider_id)
