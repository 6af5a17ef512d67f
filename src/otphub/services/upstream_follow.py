"""Following an activation bought at an upstream: its getStatus there becomes the local
activation's SMS and end.

- ``STATUS_OK:<code>``: the code is ingested as an SMS of the activation
  (``lifecycle.ingest_sms`` with the provider and the activation's phone). Its
  ``provider_sms_id`` is derived from the upstream's id, the code and how many SMS the
  activation has had, so that every follower of the same activation (at-least-once: one
  per process) stores it once, and a repeat changes nothing.
- After the customer's setStatus 3 (local state ``retry``) the upstream keeps answering
  the old code until the outbox has delivered the 3: a code is new only if it differs
  from the last one, or once the upstream has said ``STATUS_WAIT_RETRY`` (some services
  send the same code again).
- ``STATUS_CANCEL``: the upstream cancelled, expired or finished it. If the local
  activation has no code yet, getStatusV2 tells whether it had one there (then it was
  paid for, and the code is ingested first); then the activation ends as expiry would
  end it: finished with a code, cancelled and refunded without
  (``lifecycle.end_by_provider``).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from otphub.db import activations
from otphub.db import upstreams as upstream_db
from otphub.domain.activation import LIVE_STATES, Activation, State
from otphub.domain.codes import extract_code
from otphub.domain.supply import RemoteProvider, SupplierFailure
from otphub.domain.upstream_protocol import RemoteState
from otphub.services import lifecycle, suppliers, upstreams
from otphub.services.accounts import Provider
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.upstream_follow")


@dataclass
class Follow:
    """What one follower remembers of one activation between two polls."""

    activation_id: int
    # The upstream said STATUS_WAIT_RETRY since the local activation went to retry: its
    # next STATUS_OK is a new SMS even with the same code.
    retry_seen: bool = False


async def live(rt: Runtime) -> list[Activation]:
    """Live activations bought at an upstream."""
    async with rt.db.read() as conn:
        return await upstream_db.live_activations(conn)


async def _current(rt: Runtime, activation_id: int) -> Activation | None:
    async with rt.db.read() as conn:
        return await activations.get(conn, activation_id)


async def _ingest(
    rt: Runtime, provider: RemoteProvider, act: Activation, code: str, *, round_: int
) -> bool:
    assert act.remote_id is not None
    result = await lifecycle.ingest_sms(
        rt,
        provider=Provider(id=provider.id, account_id=provider.account_id),
        provider_sms_id=upstreams.sms_id_of_code(f"{act.remote_id}#{round_}", code),
        phone=act.phone,
        phone_from=None,
        text=code,
    )
    return result.sms_id is not None


async def _sms_round(rt: Runtime, activation_id: int) -> int:
    async with rt.db.read() as conn:
        return await upstream_db.matched_sms(conn, activation_id)


async def step(rt: Runtime, provider: RemoteProvider, follow: Follow, *, wait: int = 0) -> bool:
    """One getStatus of the activation at the upstream, and what it means here. ``True``
    while the activation is to be followed further. Raises ``SupplierFailure`` (try
    again later)."""
    act = await _current(rt, follow.activation_id)
    if act is None or act.state not in LIVE_STATES or act.remote_id is None:
        return False
    status = await upstreams.get_status(rt, provider, remote_id=act.remote_id, wait=wait)
    # The poll may have waited: what it says is compared with the activation as it is now.
    act = await _current(rt, follow.activation_id)
    assert act is not None and act.remote_id is not None
    if act.state not in LIVE_STATES:
        return False
    if status.state is RemoteState.RETRY:
        follow.retry_seen = act.state is State.RETRY
    elif status.state is RemoteState.CODE:
        assert status.code is not None
        new = (
            act.state is State.WAITING
            or extract_code(status.code) != act.code
            or (act.state is State.RETRY and follow.retry_seen)
        )
        if new:
            await _ingest(rt, provider, act, status.code, round_=await _sms_round(rt, act.id))
            follow.retry_seen = False
    elif status.state is RemoteState.ENDED:
        if act.state is State.WAITING:
            code = await upstreams.ended_code(rt, provider, remote_id=act.remote_id)
            if code is not None:
                await _ingest(rt, provider, act, code, round_=await _sms_round(rt, act.id))
        outcome = await lifecycle.end_by_provider(rt, activation_id=act.id)
        log.info(
            "upstream_ended_activation",
            provider_id=provider.id,
            activation_id=act.id,
            outcome=None if outcome is None else outcome.name,
        )
        return False
    elif status.state is RemoteState.UNKNOWN:
        # Not known there (another key?): nothing to act on; the local deadline ends it.
        log.warning("upstream_unknown_activation", provider_id=provider.id, activation_id=act.id)
    return True


async def follow_once(rt: Runtime) -> int:
    """One step for every live upstream activation, one after another, without waiting
    (tests, and a fallback): returns how many are still followed."""
    followed = 0
    remote = {p.id: p for p in await suppliers.remote_providers(rt)}
    for act in await live(rt):
        provider = remote.get(act.provider_id)
        if provider is None:
            continue
        try:
            followed += await step(rt, provider, Follow(act.id), wait=0)
        except SupplierFailure as exc:
            log.info("upstream_follow_failed", activation_id=act.id, reason=str(exc))
            followed += 1
    return followed
