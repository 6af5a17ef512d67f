"""The expiry sweeper: resolves overdue activations every ``OTPHUB_SWEEP_INTERVAL`` seconds.

It may run in every worker and on every node at once: on PostgreSQL each batch is taken
with SKIP LOCKED and every resolution is compare-and-set, so no activation is resolved
twice; on SQLite the write lock serialises them.
"""

from __future__ import annotations

import asyncio

import structlog

from otphub.services import lifecycle
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.sweeper")


async def run_sweeper(rt: Runtime) -> None:
    while True:
        try:
            resolved = await lifecycle.sweep(rt)
            if resolved:
                log.info("expired_activations", count=resolved)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeper_failure")
        await asyncio.sleep(rt.settings.sweep_interval)
