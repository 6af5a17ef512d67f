"""The agents' stock poller: asks every agent provider for its stock (GET_SERVICES) once
per ``OTPHUB_AGENT_POLL_SECONDS`` across the fleet (``services/agent_stock.py``). Runs in
every process beside the sweeper; the turns are claimed in the database."""

from __future__ import annotations

import asyncio

import structlog

from otphub.services import agent_stock
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.agent_poller")


async def run_agent_poller(rt: Runtime) -> None:
    # Asking more often than the period only finds the turn taken; a third of it keeps a
    # poll at most that late.
    pause = max(0.2, min(5.0, rt.settings.agent_poll_seconds / 3))
    while True:
        try:
            await agent_stock.poll_due(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent_poller_failure")
        await asyncio.sleep(pause)
