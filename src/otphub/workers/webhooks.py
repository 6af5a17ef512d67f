"""The webhook worker: sends customers' webhook messages (``services/webhook_delivery.py``)
in rounds of their own, beside the providers' outbox worker, so that neither waits for the
other's receivers. Runs in every process; each message is claimed before it is sent."""

from __future__ import annotations

import asyncio

import structlog

from otphub.services import webhook_delivery
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.webhook_worker")

PAUSE = 1.0  # seconds between two looks when nothing was due


async def run_webhooks(rt: Runtime) -> None:
    try:
        while True:
            sent = 0
            try:
                sent = await webhook_delivery.deliver_due(rt)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook_worker_failure")
            if not sent:
                await asyncio.sleep(PAUSE)
    finally:
        await webhook_delivery.close(rt)
