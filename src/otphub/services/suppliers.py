"""Remote providers (agents, upstreams): reading them with their secrets unsealed,
changing how they are reached, and their health as the pollers see it."""

from __future__ import annotations

from otphub.db import providers
from otphub.domain import errors, sealing
from otphub.domain.supply import ProviderKind, RemoteProvider
from otphub.services.accounts import checked_url
from otphub.services.operator_actions import SHELL, Actor, record
from otphub.services.runtime import Runtime


def _opened(rt: Runtime, row: providers.RemoteProviderRow) -> RemoteProvider:
    return RemoteProvider(
        id=row.id,
        name=row.name,
        kind=ProviderKind(row.kind),
        account_id=row.account_id,
        enabled=row.enabled,
        endpoint_url=row.endpoint_url,
        secret="" if row.sealed_secret is None else sealing.unseal(rt.secret, row.sealed_secret),
        markup_bp=row.markup_bp or 0,
        markup_amount=row.markup_amount or 0,
        down_since=row.down_since,
        remote_balance=row.remote_balance,
    )


async def remote_providers(
    rt: Runtime, *, kind: ProviderKind | None = None
) -> list[RemoteProvider]:
    """Every remote provider (of one kind), enabled or not, by id."""
    async with rt.db.read() as conn:
        rows = await providers.remote_providers(conn, kind=None if kind is None else kind.value)
    return [_opened(rt, row) for row in rows]


async def remote_provider(rt: Runtime, provider_id: int) -> RemoteProvider | None:
    async with rt.db.read() as conn:
        rows = await providers.remote_providers(conn, provider_id=provider_id)
    return _opened(rt, rows[0]) if rows else None


async def set_connection(
    rt: Runtime,
    *,
    provider_id: int,
    agent_url: str | None = None,
    upstream_url: str | None = None,
    upstream_key: str | None = None,
    markup_bp: int | None = None,
    markup_amount: int | None = None,
    by: Actor = SHELL,
) -> None:
    """``otphub provider set``: change how a remote provider is reached (or priced).
    Options of the other kind are refused with a clear message. Recorded as ``by``'s
    change (never the upstream key itself: only that it changed)."""
    async with rt.db.write() as conn:
        kind = await providers.kind_of(conn, provider_id)
        if kind is None:
            raise errors.NotFound(f"no provider with id {provider_id}")
        if agent_url is not None and kind != ProviderKind.AGENT:
            raise errors.InvalidInput(f"provider {provider_id} is {kind}, not an agent")
        upstream_options = (upstream_url, upstream_key, markup_bp, markup_amount)
        if any(v is not None for v in upstream_options) and kind != ProviderKind.UPSTREAM:
            raise errors.InvalidInput(f"provider {provider_id} is {kind}, not an upstream")
        if (markup_bp is not None and markup_bp < 0) or (
            markup_amount is not None and markup_amount < 0
        ):
            raise errors.InvalidAmount("a markup cannot be negative")
        url = agent_url if agent_url is not None else upstream_url
        await providers.set_remote(
            conn,
            provider_id,
            endpoint_url=None if url is None else checked_url(url, what="the URL"),
            sealed_secret=(
                None
                if not (upstream_key or "").strip()
                else sealing.seal(rt.secret, (upstream_key or "").strip())
            ),
            markup_bp=markup_bp,
            markup_amount=markup_amount,
        )
        given = {
            "url": url,
            "key_changed": bool((upstream_key or "").strip()) or None,
            "markup_bp": markup_bp,
            "markup_amount": markup_amount,
        }
        await record(
            rt,
            conn,
            by,
            "provider.connection",
            f"provider {provider_id}",
            **{k: v for k, v in given.items() if v is not None},
        )


async def mark_up(rt: Runtime, provider_id: int, *, balance: int | None = None) -> None:
    async with rt.db.write() as conn:
        await providers.mark_up(conn, provider_id, now=rt.clock.now(), balance=balance)


async def mark_down(rt: Runtime, provider_id: int, *, error: str) -> None:
    async with rt.db.write() as conn:
        await providers.mark_down(conn, provider_id, now=rt.clock.now(), error=error)
