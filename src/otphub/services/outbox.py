"""Delivering the outbox (``db/outbox.py``): each due message is claimed in a short
transaction (its next attempt pushed past the call's deadline, so no other process sends
it meanwhile), sent with no transaction open, then marked delivered or given its next
attempt with exponential backoff (5 s doubling to 10 min, jittered). It never gives up: a
message to a provider that is gone, disabled or unreachable waits and is tried again.
"""

from __future__ import annotations

import asyncio
import random

import structlog

from otphub import metrics
from otphub.db import outbox
from otphub.domain.supply import SupplierFailure
from otphub.services import agents, remote_supply, suppliers
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.outbox")

FIRST_RETRY = 5
MAX_RETRY = 600
WARN_AFTER = 5  # attempts: from then on each failure is logged at warning
BATCH = 50
# As many messages of one provider per round as it may have calls in flight per process.
PER_PROVIDER = agents.MAX_IN_FLIGHT
KINDS = (remote_supply.AGENT_FINISH, remote_supply.UPSTREAM_STATUS)


def backoff(attempts: int) -> int:
    """Seconds before the next attempt after ``attempts`` failed ones: 5, 10, 20... up to
    600, each between 75 % and 100 % of that (jitter spreads a burst of retries)."""
    base = min(MAX_RETRY, FIRST_RETRY * 2 ** min(attempts - 1, 16))
    return max(1, int(base * (0.75 + 0.25 * random.random())))


async def _deliver_one(rt: Runtime, message: outbox.Message) -> bool:
    claim_for = int(rt.settings.agent_timeout_seconds) + 30
    async with rt.db.write() as conn:
        now = rt.clock.now()
        if not await outbox.claim(
            conn, message_id=message.id, attempts=message.attempts, until=now + claim_for
        ):
            return False  # another process took it
    attempts = message.attempts + 1
    error: str | None = None
    provider = (
        None
        if message.provider_id is None
        else await suppliers.remote_provider(rt, message.provider_id)
    )
    if provider is None:
        error = "the provider no longer exists"
    elif not provider.enabled:
        error = "the provider is disabled"
    else:
        try:
            await remote_supply.deliver(rt, provider, message.kind, message.payload)
        except SupplierFailure as failure:
            error = str(failure)
        except Exception as bug:
            log.exception("outbox_delivery_error", message_id=message.id)
            error = f"internal: {type(bug).__name__}"
    async with rt.db.write() as conn:
        now = rt.clock.now()
        if error is None:
            await outbox.delivered(conn, message_id=message.id, now=now)
        else:
            await outbox.retry_later(
                conn, message_id=message.id, at=now + backoff(attempts), error=error
            )
    if error is None:
        metrics.OUTBOX.labels(message.kind, "delivered").inc()
        return True
    metrics.OUTBOX.labels(message.kind, "retried").inc()
    if attempts >= WARN_AFTER:
        log.warning(
            "outbox_undelivered", message_id=message.id, attempts=attempts, error=error[:120]
        )
    return False


async def deliver_due(rt: Runtime, *, limit: int = BATCH) -> int:
    """Try every due message once (side by side); returns how many were tried."""
    async with rt.db.read() as conn:
        # A few rounds' worth, so that other providers' messages are found behind a backlog
        # of one provider's.
        due = await outbox.due(conn, now=rt.clock.now(), limit=4 * limit, kinds=KINDS)
    # At most PER_PROVIDER messages of one provider per round: they all run side by side,
    # so a round lasts one call's deadline at worst. More of one slow provider would queue
    # on its in-flight limit and hold every other provider's messages back for several.
    taken: dict[int | None, int] = {}
    messages: list[outbox.Message] = []
    for message in due:
        if len(messages) == limit:
            break
        if taken.get(message.provider_id, 0) < PER_PROVIDER:
            taken[message.provider_id] = taken.get(message.provider_id, 0) + 1
            messages.append(message)
    if messages:
        await asyncio.gather(*(_deliver_one(rt, m) for m in messages))
    return len(messages)


async def undelivered(rt: Runtime) -> list[outbox.Message]:
    """Messages not delivered yet, due or not (operators, tests)."""
    async with rt.db.read() as conn:
        return await outbox.due(conn, now=2**62, limit=1000)
