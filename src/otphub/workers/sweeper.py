"""The expiry sweeper: resolves overdue activations every ``OTPHUB_SWEEP_INTERVAL`` seconds,
and refreshes the providers' delivery records once a minute (and purges API v1's
idempotency keys older than a day).

It may run in every worker and on every node at once: each overdue activation is resolved
in its own transaction that locks its row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row
another node holds is skipped) and changes its state compare-and-set, so no activation is
resolved twice; on SQLite the write lock serialises them. The delivery-record refresh is
claimed per minute in the database (``db/schedules.py``): each process asks once a minute,
and one process of the fleet does it.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from otphub.services import idempotency, inventory, lifecycle, remote_purchase
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.sweeper")


async def run_sweeper(rt: Runtime) -> None:
    next_refresh = 0.0
    while True:
        try:
            resolved = await lifecycle.sweep(rt)
            if resolved:
                log.info("expired_activations", count=resolved)
            # Purchases a crash left between their phases (the first sweep runs at start),
            # and whether remote providers exist (one added by the CLI counts from now on).
            await remote_purchase.recover(rt)
            await remote_purchase.refresh_presence(rt)
            if time.monotonic() >= next_refresh:
                await inventory.refresh_delivery_scores(rt)
                # API v1's idempotency keys older than a day: forgotten.
                await idempotency.purge(rt)
                next_refresh = time.monotonic() + inventory.SCORE_REFRESH_SECONDS
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeper_failure")
        await asyncio.sleep(rt.settings.sweep_interval)
