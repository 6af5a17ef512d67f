"""Statements on providers (SIM banks): their rows and their payable balance."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select

from otphub.db.engine import Conn
from otphub.db.schema import accounts, providers


async def insert_provider(conn: Conn, *, name: str, account_id: int, now: int) -> int:
    result = await conn.execute(
        insert(providers)
        .values(name=name, account_id=account_id, created_at=now)
        .returning(providers.c.id)
    )
    return int(result.scalar_one())


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
