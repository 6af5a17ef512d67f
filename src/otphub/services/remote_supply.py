"""Dispatch to a remote provider's client by its kind: the purchase's phase 2 and the
outbox's deliveries call these, never a client directly, so a new kind plugs in here."""

from __future__ import annotations

from typing import Any

from otphub.domain.supply import (
    NumberRequest,
    ProviderKind,
    RemoteNumber,
    RemoteProvider,
    SupplierFailure,
)
from otphub.services import agents, country_names, upstreams
from otphub.services.runtime import Runtime

AGENT_FINISH = "agent_finish"
UPSTREAM_STATUS = "upstream_status"


async def get_number(rt: Runtime, provider: RemoteProvider, request: NumberRequest) -> RemoteNumber:
    """Ask the provider for a number; raises ``NoRemoteNumbers`` or ``SupplierFailure``."""
    if provider.kind is ProviderKind.AGENT:
        country = country_names.protocol_name(rt, request.country_id)
        return await agents.get_number(rt, provider, request, country=country)
    if provider.kind is ProviderKind.UPSTREAM:
        return await upstreams.get_number(rt, provider, request)
    raise SupplierFailure(f"provider {provider.id} is not remote")


async def deliver(
    rt: Runtime, provider: RemoteProvider, kind: str, payload: dict[str, Any]
) -> None:
    """Deliver one outbox message; returns once the other side acknowledged it."""
    if kind == AGENT_FINISH and provider.kind is ProviderKind.AGENT:
        await agents.finish_activation(rt, provider, payload)
    elif kind == UPSTREAM_STATUS and provider.kind is ProviderKind.UPSTREAM:
        await upstreams.deliver_status(rt, provider, payload)
    else:
        raise SupplierFailure(f"no delivery of {kind} to a provider of kind {provider.kind}")
