"""The upstream poller: reads every upstream's balance and prices once per
``OTPHUB_UPSTREAM_POLL_SECONDS`` for the whole fleet (each process asks every few seconds;
the turn of each provider is claimed in the database, so one process polls it)."""

from __future__ import annotations

import asyncio

import structlog

from otphub.services import upstream_stock
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.upstream_poller")

# How often a process asks whether a poll is due (the period itself is the setting).
ASK_SECONDS = 2.0


async def run_upstream_poller(rt: Runtime) -> None:
    while True:
        try:
            await upstream_stock.poll_due(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("upstream_poller_failure")
        await asyncio.sleep(min(ASK_SECONDS, rt.settings.upstream_poll_seconds))
