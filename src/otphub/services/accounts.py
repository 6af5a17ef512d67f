"""Customers and providers: creating them, their keys, topping up, authenticating."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from otphub.db import ledger
from otphub.db.schema import accounts, customers, providers
from otphub.domain import errors, keys
from otphub.services.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    account_id: int
    max_live: int | None


@dataclass(frozen=True, slots=True)
class NewCustomer:
    id: int
    api_key: str


@dataclass(frozen=True, slots=True)
class Provider:
    id: int
    account_id: int


@dataclass(frozen=True, slots=True)
class NewProvider:
    id: int
    key: str


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 128:
        raise errors.InvalidInput("a name must have 1 to 128 characters")
    return name


async def add_customer(rt: Runtime, *, name: str, balance: int = 0) -> NewCustomer:
    api_key = keys.new_key(keys.CUSTOMER_PREFIX)
    now = rt.clock.now()
    async with rt.db.write() as conn:
        account_id = await ledger.open_account(conn, kind="customer")
        result = await conn.execute(
            insert(customers)
            .values(
                name=_name(name),
                key_hash=keys.key_hash(rt.secret, api_key),
                account_id=account_id,
                created_at=now,
            )
            .returning(customers.c.id)
        )
        customer_id = int(result.scalar_one())
        if balance > 0:
            await ledger.top_up(
                conn, system=rt.accounts(), account_id=account_id, amount=balance, now=now
            )
    return NewCustomer(id=customer_id, api_key=api_key)


async def top_up(rt: Runtime, *, customer_id: int, amount: int) -> int:
    """Credit a customer's wallet; returns the new available balance."""
    if amount <= 0:
        raise errors.InvalidAmount("a top-up must be positive")
    async with rt.db.write() as conn:
        account_id = (
            await conn.execute(select(customers.c.account_id).where(customers.c.id == customer_id))
        ).scalar_one_or_none()
        if account_id is None:
            raise errors.NotFound(f"no customer with id {customer_id}")
        await ledger.top_up(
            conn, system=rt.accounts(), account_id=account_id, amount=amount, now=rt.clock.now()
        )
        return await ledger.available(conn, account_id)


async def ban_customer(rt: Runtime, *, customer_id: int, until: int | None) -> None:
    async with rt.db.write() as conn:
        result = await conn.execute(
            update(customers).where(customers.c.id == customer_id).values(banned_until=until)
        )
        if result.rowcount != 1:
            raise errors.NotFound(f"no customer with id {customer_id}")


async def authenticate_customer(rt: Runtime, api_key: str | None) -> Customer:
    if api_key is None:
        raise errors.NoKey()
    if not keys.looks_like_key(api_key):
        raise errors.BadKey()
    digest = keys.key_hash(rt.secret, api_key)
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    customers.c.id,
                    customers.c.account_id,
                    customers.c.banned_until,
                    customers.c.max_live,
                    customers.c.key_hash,
                ).where(customers.c.key_hash == digest)
            )
        ).first()
    if row is None:
        raise errors.BadKey()
    now = rt.clock.now()
    if row.banned_until is not None and row.banned_until > now:
        until = datetime.fromtimestamp(row.banned_until, UTC).astimezone(rt.tz)
        raise errors.Banned(until.strftime("%Y-%m-%d %H-%M-%S"))
    return Customer(id=row.id, account_id=row.account_id, max_live=row.max_live)


async def balance(rt: Runtime, customer: Customer) -> int:
    async with rt.db.read() as conn:
        return await ledger.available(conn, customer.account_id)


async def add_provider(rt: Runtime, *, name: str) -> NewProvider:
    key = keys.new_key(keys.PROVIDER_PREFIX)
    async with rt.db.write() as conn:
        exists = (
            await conn.execute(select(providers.c.id).where(providers.c.name == _name(name)))
        ).first()
        if exists is not None:
            raise errors.InvalidInput(f"a provider named {name.strip()!r} exists already")
        account_id = await ledger.open_account(conn, kind="provider")
        try:
            result = await conn.execute(
                insert(providers)
                .values(
                    name=_name(name),
                    key_hash=keys.key_hash(rt.secret, key),
                    account_id=account_id,
                    created_at=rt.clock.now(),
                )
                .returning(providers.c.id)
            )
        except IntegrityError as exc:
            raise errors.InvalidInput(f"a provider named {name.strip()!r} exists already") from exc
    return NewProvider(id=int(result.scalar_one()), key=key)


async def authenticate_provider(rt: Runtime, key: str | None) -> Provider:
    if not key or not keys.looks_like_key(key):
        raise errors.SupplierError("bad key", http_status=401)
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(providers.c.id, providers.c.account_id, providers.c.enabled).where(
                    providers.c.key_hash == keys.key_hash(rt.secret, key)
                )
            )
        ).first()
    if row is None:
        raise errors.SupplierError("bad key", http_status=401)
    if not row.enabled:
        raise errors.SupplierError("provider disabled", http_status=403)
    return Provider(id=row.id, account_id=row.account_id)


async def provider_exists(rt: Runtime, provider_id: int) -> bool:
    async with rt.db.read() as conn:
        found = await conn.execute(select(providers.c.id).where(providers.c.id == provider_id))
        return found.first() is not None


async def provider_balance(rt: Runtime, provider_id: int) -> int:
    async with rt.db.read() as conn:
        value = (
            await conn.execute(
                select(accounts.c.balance)
                .join(providers, providers.c.account_id == accounts.c.id)
                .where(providers.c.id == provider_id)
            )
        ).scalar_one_or_none()
    if value is None:
        raise errors.NotFound(f"no provider with id {provider_id}")
    return int(value)
