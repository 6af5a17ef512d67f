"""The outbox worker: delivers what remote providers must hear (FINISH_ACTIVATION to
agents, setStatus to upstreams) until they acknowledge it (``services/outbox.py``). Runs in
every process beside the sweeper; each message is claimed before it is sent."""

from __future__ import annotations

import asyncio

import structlog

from otphub.services import outbox
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.outbox_worker")

PAUSE = 1.0  # seconds between two looks when nothing was due


async def run_outbox(rt: Runtime) -> None:
    while True:
        sent = 0
        try:
            sent = await outbox.deliver_due(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox_failure")
        if not sent:
            await asyncio.sleep(PAUSE)
