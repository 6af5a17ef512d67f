"""Agents' stock: one GET_SERVICES per agent provider per ``OTPHUB_AGENT_POLL_SECONDS``
across the whole fleet (the turn is claimed in the database, ``db/schedules``), its answer
mapped to the catalog and stored in ``remote_stock``.

A good answer replaces the provider's stock and marks it up, in one transaction. A failure,
a timeout or garbage marks it down (the reason kept) and removes its stock, so it sells
nothing until a poll succeeds again. Unknown countries and services in an answer are
skipped (logged at debug), never fatal. No transaction is open during the call.
"""

from __future__ import annotations

import asyncio
import re

import structlog

from otphub import metrics
from otphub.db import providers, remote_stock, schedules
from otphub.db.remote_stock import PolledLine
from otphub.domain.supply import ProviderKind, RemoteProvider, SupplierFailure
from otphub.services import agents, country_names, suppliers
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.agent_stock")

_OPERATOR = re.compile(r"[a-z0-9_]{1,32}")


def job_name(provider_id: int) -> str:
    return f"agent_poll:{provider_id}"


def period(rt: Runtime) -> int:
    return max(1, round(rt.settings.agent_poll_seconds))


def mapped(
    rt: Runtime, names: dict[str, int], counts: list[agents.ServiceCount]
) -> list[PolledLine]:
    """The answer's counts in catalog terms; unknown names are skipped."""
    lines: list[PolledLine] = []
    for count in counts:
        country_id = names.get(count.country.strip().lower())
        if country_id is None:
            log.debug("agent_unknown_country", name=count.country[:64])
            continue
        if count.service not in rt.catalog.services:
            log.debug("agent_unknown_service", name=count.service[:64])
            continue
        operator = count.operator.strip().lower() or "any"
        if not _OPERATOR.fullmatch(operator):
            log.debug("agent_unknown_operator", name=count.operator[:64])
            continue
        lines.append(PolledLine(country_id, operator, count.service, count.count))
    return lines


async def _claim(rt: Runtime, provider_id: int) -> bool:
    async with rt.db.write() as conn:
        return await schedules.claim_turn(
            conn,
            is_sqlite=rt.db.is_sqlite,
            job=job_name(provider_id),
            now=rt.clock.now(),
            every=period(rt),
        )


async def poll(rt: Runtime, provider: RemoteProvider) -> bool:
    """One GET_SERVICES to the provider, its outcome stored; ``True`` if it succeeded."""
    try:
        counts = await agents.get_services(rt, provider)
        names = await country_names.names(rt)
        lines = mapped(rt, names, counts)
    except SupplierFailure as failure:
        async with rt.db.write() as conn:
            await providers.mark_down(conn, provider.id, now=rt.clock.now(), error=str(failure))
            await remote_stock.clear(conn, provider_id=provider.id)
        log.info("agent_down", provider_id=provider.id, reason=str(failure))
        return False
    async with rt.db.write() as conn:
        now = rt.clock.now()
        await remote_stock.replace(conn, provider_id=provider.id, lines=lines, now=now)
        await providers.mark_up(conn, provider.id, now=now)
    return True


async def poll_due(rt: Runtime) -> int:
    """Poll every enabled agent whose turn it is (side by side: a slow agent does not
    delay the others' polls); returns how many this call polled."""
    due = [
        p
        for p in await suppliers.remote_providers(rt, kind=ProviderKind.AGENT)
        if p.enabled and await _claim(rt, p.id)
    ]
    if due:
        await asyncio.gather(*(poll(rt, p) for p in due))
        metrics.BACKGROUND_RUNS.labels("agent_poll").inc(len(due))
    return len(due)
