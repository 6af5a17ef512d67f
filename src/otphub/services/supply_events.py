"""What a remote provider must hear about its activations, written to the outbox in the
transaction of the change it reports (the outbox worker delivers it; see
``services/outbox.py``).

Agents (FINISH_ACTIVATION): 3 when the hold is captured (finish, or expiry with a code),
4 on cancel or expiry without a code, 5 on a refund, and 4 for a number OTPHub refused.
Upstreams (setStatus there): 6 on capture, 8 on cancel or expiry without a code, and the
customer's setStatus 1 and 3 mirrored.

Only activations with a ``remote_id`` come here (``lifecycle`` checks that on the row it
already holds), so local activations pay no statement for it.
"""

from __future__ import annotations

from otphub.db import outbox, providers
from otphub.db.engine import Conn
from otphub.domain.activation import Activation
from otphub.domain.supply import ProviderKind
from otphub.services import agents
from otphub.services.remote_supply import AGENT_FINISH, UPSTREAM_STATUS
from otphub.services.runtime import Runtime

# Upstream setStatus words (customer protocol).
UPSTREAM_READY = 1
UPSTREAM_RETRY = 3
UPSTREAM_FINISH = 6
UPSTREAM_CANCEL = 8


async def _kind(rt: Runtime, conn: Conn, provider_id: int) -> ProviderKind | None:
    # A provider's kind never changes: one read per provider per process.
    kinds: dict[int, ProviderKind] = rt.extensions.setdefault("provider_kinds", {})
    kind = kinds.get(provider_id)
    if kind is None:
        stored = await providers.kind_of(conn, provider_id)
        if stored is None:
            return None
        kind = kinds[provider_id] = ProviderKind(stored)
    return kind


async def _enqueue(
    rt: Runtime,
    conn: Conn,
    *,
    kind: str,
    dedupe_key: str,
    provider_id: int,
    activation_id: int | None,
    payload: dict[str, object],
    now: int,
) -> None:
    await outbox.enqueue(
        conn,
        is_sqlite=rt.db.is_sqlite,
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload,
        now=now,
        provider_id=provider_id,
        activation_id=activation_id,
    )


def _remote_int(remote_id: str) -> int | str:
    # Agents' ids are integers (the client checked); an upstream's may be any string.
    return int(remote_id) if remote_id.isascii() and remote_id.isdigit() else remote_id


async def _tell(
    rt: Runtime, conn: Conn, act: Activation, *, agent: int | None, upstream: int | None, now: int
) -> None:
    if act.remote_id is None:
        return
    kind = await _kind(rt, conn, act.provider_id)
    if kind is ProviderKind.AGENT and agent is not None:
        await _enqueue(
            rt,
            conn,
            kind=AGENT_FINISH,
            dedupe_key=f"{AGENT_FINISH}:{act.id}:{agent}",
            provider_id=act.provider_id,
            activation_id=act.id,
            payload={"activationId": _remote_int(act.remote_id), "status": agent},
            now=now,
        )
    elif kind is ProviderKind.UPSTREAM and upstream is not None:
        # Several status-3 messages may be due for one activation (one per new SMS the
        # customer asks for): the key names the SMS they follow and the moment.
        event = f":{act.sms_at}:{now}" if upstream == UPSTREAM_RETRY else ""
        await _enqueue(
            rt,
            conn,
            kind=UPSTREAM_STATUS,
            dedupe_key=f"{UPSTREAM_STATUS}:{act.id}:{upstream}{event}",
            provider_id=act.provider_id,
            activation_id=act.id,
            payload={"id": _remote_int(act.remote_id), "status": upstream},
            now=now,
        )


async def captured(rt: Runtime, conn: Conn, act: Activation, *, now: int) -> None:
    await _tell(rt, conn, act, agent=agents.FINISH_SOLD, upstream=UPSTREAM_FINISH, now=now)


async def released(rt: Runtime, conn: Conn, act: Activation, *, now: int) -> None:
    await _tell(rt, conn, act, agent=agents.FINISH_CANCELLED, upstream=UPSTREAM_CANCEL, now=now)


async def refunded(rt: Runtime, conn: Conn, act: Activation, *, now: int) -> None:
    await _tell(rt, conn, act, agent=agents.FINISH_REFUNDED, upstream=None, now=now)


async def not_again(rt: Runtime, conn: Conn, act: Activation, *, now: int) -> None:
    """The number is retired for the activation's service (cancelled too often): an agent
    hears FINISH_ACTIVATION 1. For the retirement rule of issue 9 (provider accounts)."""
    await _tell(rt, conn, act, agent=agents.FINISH_NOT_AGAIN, upstream=None, now=now)


async def ready(rt: Runtime, conn: Conn, act: Activation, *, now: int) -> None:
    await _tell(rt, conn, act, agent=None, upstream=UPSTREAM_READY, now=now)


async def retry(rt: Runtime, conn: Conn, act: Activation, *, now: int) -> None:
    await _tell(rt, conn, act, agent=None, upstream=UPSTREAM_RETRY, now=now)


async def number_refused(
    rt: Runtime, conn: Conn, *, provider_id: int, purchase_id: int, remote_id: str, now: int
) -> None:
    """A number the provider handed out that OTPHub does not sell (wrong country, an
    excluded prefix, busy, or came too late): give it back."""
    kind = await _kind(rt, conn, provider_id)
    if kind is ProviderKind.AGENT:
        status, message, payload_id = agents.FINISH_CANCELLED, AGENT_FINISH, "activationId"
    elif kind is ProviderKind.UPSTREAM:
        status, message, payload_id = UPSTREAM_CANCEL, UPSTREAM_STATUS, "id"
    else:
        return
    await _enqueue(
        rt,
        conn,
        kind=message,
        dedupe_key=f"{message}:purchase:{purchase_id}:{status}",
        provider_id=provider_id,
        activation_id=None,
        payload={payload_id: _remote_int(remote_id), "status": status},
        now=now,
    )
