"""The upstream follower: one task per live activation bought at an upstream, polling its
getStatus there (long-polls with ``wait=`` where the upstream has OTPHub's extension,
every few seconds otherwise) until it ends (services/upstream_follow.py).

Every process follows every such activation (at least once: what a follower does is
idempotent, see ``upstream_follow``); the calls per upstream are bounded per process
(``upstreams.Limits.follows_in_flight``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from otphub.domain.supply import RemoteProvider, SupplierFailure
from otphub.services import suppliers, upstream_follow, upstreams
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.upstream_follower")

SCAN_SECONDS = 2.0  # how often new activations are looked for
POLL_SECONDS = 3.0  # between two polls of an upstream that answered at once
MAX_BACKOFF_SECONDS = 60.0


async def _follow(rt: Runtime, provider: RemoteProvider, activation_id: int) -> None:
    follow = upstream_follow.Follow(activation_id)
    failures = 0
    wait = upstreams.limits(rt).status_wait_seconds
    while True:
        began = time.monotonic()
        try:
            going = await upstream_follow.step(rt, provider, follow, wait=wait)
        except SupplierFailure as exc:
            failures += 1
            log.info("upstream_follow_failed", activation_id=activation_id, reason=str(exc))
            await asyncio.sleep(min(MAX_BACKOFF_SECONDS, POLL_SECONDS * 2**failures))
            continue
        failures = 0
        if not going:
            return
        # An answer that came at once: the upstream does not long-poll (or the status
        # changed); either way the next poll comes after a pause.
        if time.monotonic() - began < wait / 2:
            await asyncio.sleep(POLL_SECONDS)


async def run_upstream_follower(rt: Runtime) -> None:
    tasks: dict[int, asyncio.Task[None]] = {}
    try:
        while True:
            try:
                live = await upstream_follow.live(rt)
                if live:
                    remote = {p.id: p for p in await suppliers.remote_providers(rt)}
                    for act in live:
                        task = tasks.get(act.id)
                        provider = remote.get(act.provider_id)
                        if (task is None or task.done()) and provider is not None:
                            tasks[act.id] = asyncio.create_task(_follow(rt, provider, act.id))
                for activation_id in [i for i, t in tasks.items() if t.done()]:
                    done = tasks.pop(activation_id)
                    if not done.cancelled() and done.exception() is not None:
                        log.error("upstream_follow_crashed", exc_info=done.exception())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("upstream_follower_failure")
            await asyncio.sleep(SCAN_SECONDS)
    finally:
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
