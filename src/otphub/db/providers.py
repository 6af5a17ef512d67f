"""Statements on providers (SIM banks): their rows and their payable balance."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update

from otphub.db.engine import Conn
from otphub.db.schema import accounts, providers


async def insert_provider(
    conn: Conn,
    *,
    name: str,
    account_id: int,
    now: int,
    kind: str = "local",
    endpoint_url: str | None = None,
    sealed_secret: str | None = None,
    markup_bp: int | None = None,
    markup_amount: int | None = None,
) -> int:
    result = await conn.execute(
        insert(providers)
        .values(
            name=name,
            account_id=account_id,
            created_at=now,
            kind=kind,
            endpoint_url=endpoint_url,
            sealed_secret=sealed_secret,
            markup_bp=markup_bp,
            markup_amount=markup_amount,
        )
        .returning(providers.c.id)
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True)
class RemoteProviderRow:
    """A remote provider's row, its secret still sealed (services unseal it)."""

    id: int
    name: str
    kind: str
    account_id: int
    enabled: bool
    endpoint_url: str
    sealed_secret: str | None
    markup_bp: int | None
    markup_amount: int | None
    down_since: int | None
    remote_balance: int | None


_REMOTE_COLUMNS = (
    providers.c.id,
    providers.c.name,
    providers.c.kind,
    providers.c.account_id,
    providers.c.enabled,
    providers.c.endpoint_url,
    providers.c.sealed_secret,
    providers.c.markup_bp,
    providers.c.markup_amount,
    providers.c.down_since,
    providers.c.remote_balance,
)


async def remote_providers(
    conn: Conn, *, kind: str | None = None, provider_id: int | None = None
) -> list[RemoteProviderRow]:
    """Providers that are not local inventory (of one kind, or one provider), by id."""
    query = select(*_REMOTE_COLUMNS).where(providers.c.kind != "local").order_by(providers.c.id)
    if kind is not None:
        query = query.where(providers.c.kind == kind)
    if provider_id is not None:
        query = query.where(providers.c.id == provider_id)
    return [RemoteProviderRow(*row) for row in await conn.execute(query)]


async def kind_of(conn: Conn, provider_id: int) -> str | None:
    found = await conn.execute(select(providers.c.kind).where(providers.c.id == provider_id))
    value = found.scalar()
    return str(value) if value is not None else None


async def set_remote(
    conn: Conn,
    provider_id: int,
    *,
    endpoint_url: str | None = None,
    sealed_secret: str | None = None,
    markup_bp: int | None = None,
    markup_amount: int | None = None,
) -> None:
    """Change what is given (``None``: left as it is) of a remote provider's connection."""
    values: dict[str, object] = {}
    if endpoint_url is not None:
        values["endpoint_url"] = endpoint_url
    if sealed_secret is not None:
        values["sealed_secret"] = sealed_secret
    if markup_bp is not None:
        values["markup_bp"] = markup_bp
    if markup_amount is not None:
        values["markup_amount"] = markup_amount
    if values:
        await conn.execute(update(providers).where(providers.c.id == provider_id).values(values))


async def mark_up(conn: Conn, provider_id: int, *, now: int, balance: int | None = None) -> None:
    """A poll succeeded: the provider is up (and, for an upstream, has this balance)."""
    values: dict[str, object] = {"polled_at": now, "down_since": None, "last_error": None}
    if balance is not None:
        values["remote_balance"] = balance
    await conn.execute(update(providers).where(providers.c.id == provider_id).values(values))


async def mark_down(conn: Conn, provider_id: int, *, now: int, error: str) -> None:
    """A poll failed: down since now (or since it first failed), with the reason."""
    row = (
        await conn.execute(select(providers.c.down_since).where(providers.c.id == provider_id))
    ).first()
    since = row.down_since if row is not None and row.down_since is not None else now
    await conn.execute(
        update(providers)
        .where(providers.c.id == provider_id)
        .values(down_since=since, last_error=error[:200])
    )


async def exists(conn: Conn, provider_id: int) -> bool:
    found = await conn.execute(select(providers.c.id).where(providers.c.id == provider_id))
    return found.first() is not None


async def named(conn: Conn, name: str) -> int | None:
    """The id of the provider with this name."""
    found = await conn.execute(select(providers.c.id).where(providers.c.name == name))
    value = found.scalar()
    return int(value) if value is not None else None


_ACCOUNT = select(providers.c.account_id).where(providers.c.id == bindparam("provider_id"))


async def account_of(conn: Conn, provider_id: int) -> int:
    """The provider's payable account (every capture credits it)."""
    return int((await conn.execute(_ACCOUNT, {"provider_id": provider_id})).scalar_one())


async def payable(conn: Conn, provider_id: int) -> int | None:
    """What the operator owes the provider; ``None`` if there is no such provider."""
    value = (
        await conn.execute(
            select(accounts.c.balance)
            .join(providers, providers.c.account_id == accounts.c.id)
            .where(providers.c.id == provider_id)
        )
    ).scalar_one_or_none()
    return int(value) if value is not None else None
