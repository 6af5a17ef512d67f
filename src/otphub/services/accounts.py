"""Customers and providers: creating them, their keys, topping up, authenticating."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, Select, and_, bindparam, insert, select, update

from otphub.db import ledger
from otphub.db.activations import ACTIVATION_COLUMNS, Activation
from otphub.db.engine import Conn
from otphub.db.schema import accounts, activations, api_keys, customers, providers
from otphub.domain import errors, keys
from otphub.services.runtime import Runtime

OwnerKind = Literal["customer", "provider"]
_PREFIX: dict[OwnerKind, str] = {
    "customer": keys.CUSTOMER_PREFIX,
    "provider": keys.PROVIDER_PREFIX,
}
_OWNERS = {"customer": customers, "provider": providers}


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    account_id: int
    max_live: int | None
    rate_limit: int | None = None
    key_id: int = 0


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


@dataclass(frozen=True, slots=True)
class NewKey:
    id: int
    key: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    hint: str
    created_at: int
    revoked_at: int | None


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 128:
        raise errors.InvalidInput("a name must have 1 to 128 characters")
    return name


async def _issue_key(rt: Runtime, conn: Conn, *, kind: OwnerKind, owner_id: int) -> NewKey:
    key = keys.new_key(_PREFIX[kind])
    result = await conn.execute(
        insert(api_keys)
        .values(
            owner_kind=kind,
            owner_id=owner_id,
            key_hash=keys.key_hash(rt.secret, key),
            hint=keys.hint(key),
            created_at=rt.clock.now(),
        )
        .returning(api_keys.c.id)
    )
    return NewKey(id=int(result.scalar_one()), key=key)


async def _require_owner(conn: Conn, kind: OwnerKind, owner_id: int) -> None:
    table = _OWNERS[kind]
    if (await conn.execute(select(table.c.id).where(table.c.id == owner_id))).first() is None:
        raise errors.NotFound(f"no {kind} with id {owner_id}")


async def add_key(rt: Runtime, *, kind: OwnerKind, owner_id: int) -> NewKey:
    """Another key for the same customer or provider (rotation: add, switch, revoke)."""
    async with rt.db.write() as conn:
        await _require_owner(conn, kind, owner_id)
        return await _issue_key(rt, conn, kind=kind, owner_id=owner_id)


async def revoke_key(rt: Runtime, *, kind: OwnerKind, key: str) -> KeyInfo:
    """Revoke by key id or by the key itself. Effective at once on every server process:
    every request looks its key up."""
    async with rt.db.write() as conn:
        condition = (
            api_keys.c.id == int(key)
            if key.isascii() and key.isdigit()
            else api_keys.c.key_hash == keys.key_hash(rt.secret, key)
        )
        row = (
            await conn.execute(select(api_keys).where(condition, api_keys.c.owner_kind == kind))
        ).first()
        if row is None:
            raise errors.NotFound(f"no {kind} key {keys.hint(key)!r}")
        revoked_at = row.revoked_at or rt.clock.now()
        await conn.execute(
            update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=revoked_at)
        )
        return KeyInfo(row.id, row.hint, row.created_at, revoked_at)


async def list_keys(rt: Runtime, *, kind: OwnerKind, owner_id: int) -> list[KeyInfo]:
    async with rt.db.read() as conn:
        await _require_owner(conn, kind, owner_id)
        rows = await conn.execute(
            select(api_keys)
            .where(api_keys.c.owner_kind == kind, api_keys.c.owner_id == owner_id)
            .order_by(api_keys.c.id)
        )
        return [KeyInfo(r.id, r.hint, r.created_at, r.revoked_at) for r in rows]


async def add_customer(rt: Runtime, *, name: str, balance: int = 0) -> NewCustomer:
    now = rt.clock.now()
    async with rt.db.write() as conn:
        account_id = await ledger.open_account(conn, kind="customer")
        result = await conn.execute(
            insert(customers)
            .values(name=_name(name), account_id=account_id, created_at=now)
            .returning(customers.c.id)
        )
        customer_id = int(result.scalar_one())
        if balance > 0:
            await ledger.top_up(
                conn, system=rt.accounts(), account_id=account_id, amount=balance, now=now
            )
        first = await _issue_key(rt, conn, kind="customer", owner_id=customer_id)
    return NewCustomer(id=customer_id, api_key=first.key)


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


async def set_limits(
    rt: Runtime,
    *,
    customer_id: int,
    rate_limit: int | None = None,
    max_live: int | None = None,
    banned_until: int | None = None,
    unban: bool = False,
) -> None:
    """Per-customer overrides; ``None`` leaves a value as it is."""
    values: dict[str, object] = {}
    if rate_limit is not None:
        values["rate_limit"] = rate_limit
    if max_live is not None:
        values["max_live"] = max_live
    if banned_until is not None or unban:
        values["banned_until"] = None if unban else banned_until
    if any(isinstance(v, int) and v < 0 for v in values.values()):
        raise errors.InvalidInput("limits must be 0 or more")
    async with rt.db.write() as conn:
        await _require_owner(conn, "customer", customer_id)
        if values:
            await conn.execute(
                update(customers).where(customers.c.id == customer_id).values(**values)
            )


async def ban_customer(rt: Runtime, *, customer_id: int, until: int | None) -> None:
    await set_limits(rt, customer_id=customer_id, banned_until=until, unban=until is None)


async def authenticate_customer(rt: Runtime, api_key: str | None) -> Customer:
    customer, _ = await _authenticate(rt, api_key, _CUSTOMER_BY_KEY, {})
    return customer


async def authenticate_polling(
    rt: Runtime, api_key: str | None, activation_id: int | None
) -> tuple[Customer, Activation | None]:
    """The key's customer and, read by the same statement, that customer's activation
    ``activation_id`` (``None``: no such activation of theirs, or no id). Status polls are
    most of the traffic: one round trip instead of two."""
    customer, row = await _authenticate(
        rt, api_key, _CUSTOMER_AND_ACTIVATION, {"activation_id": activation_id}
    )
    polled = row[_KEY_WIDTH:]
    return customer, None if polled[0] is None else Activation.from_row(polled)


async def _authenticate(
    rt: Runtime, api_key: str | None, statement: Select[Any], params: dict[str, Any]
) -> tuple[Customer, tuple[Any, ...]]:
    """``params``: the statement's other parameters, in a dict of the caller's own, to
    which the key's digest is added."""
    if api_key is None:
        raise errors.NoKey()
    digest = keys.presented_digest(rt.secret, api_key, keys.CUSTOMER_PREFIX)
    if digest is None:
        raise errors.BadKey()
    params["digest"] = digest
    found = await rt.db.one(statement, params)
    if found is None:
        raise errors.BadKey()
    row = tuple(found)
    key_id, customer_id, account_id, banned_until, max_live, rate_limit = row[:_KEY_WIDTH]
    if banned_until is not None and banned_until > rt.clock.now():
        until = datetime.fromtimestamp(banned_until, UTC).astimezone(rt.tz)
        raise errors.Banned(until.strftime("%Y-%m-%d %H-%M-%S"))
    customer = Customer(
        id=customer_id,
        account_id=account_id,
        max_live=max_live,
        rate_limit=rate_limit,
        key_id=key_id,
    )
    return customer, row


# Every customer-API request runs one of these: built once (see Database.one). A revoked
# key is refused from the next request on, in every process, because nothing caches it.
_KEY_COLUMNS = (
    api_keys.c.id,
    customers.c.id,
    customers.c.account_id,
    customers.c.banned_until,
    customers.c.max_live,
    customers.c.rate_limit,
)
_KEY_WIDTH = len(_KEY_COLUMNS)


def _valid_key(kind: OwnerKind) -> tuple[ColumnElement[bool], ...]:
    """The unrevoked key of this kind whose hash is bound as ``digest``."""
    return (
        api_keys.c.key_hash == bindparam("digest"),
        api_keys.c.owner_kind == kind,
        api_keys.c.revoked_at.is_(None),
    )


_VALID_KEY = _valid_key("customer")
_CUSTOMER_BY_KEY = (
    select(*_KEY_COLUMNS).join(customers, customers.c.id == api_keys.c.owner_id).where(*_VALID_KEY)
)
# Another customer's activation id finds nothing, exactly like a missing one.
_CUSTOMER_AND_ACTIVATION = (
    select(*_KEY_COLUMNS, *ACTIVATION_COLUMNS)
    .select_from(api_keys)
    .join(customers, customers.c.id == api_keys.c.owner_id)
    .outerjoin(
        activations,
        and_(
            activations.c.id == bindparam("activation_id", type_=BigInteger),
            activations.c.customer_id == customers.c.id,
        ),
    )
    .where(*_VALID_KEY)
)
_AVAILABLE = select(accounts.c.balance - accounts.c.held).where(
    accounts.c.id == bindparam("account_id")
)


async def balance(rt: Runtime, customer: Customer) -> int:
    row = await rt.db.one(_AVAILABLE, {"account_id": customer.account_id})
    assert row is not None
    return int(row[0])


async def add_provider(rt: Runtime, *, name: str) -> NewProvider:
    clean = _name(name)
    async with rt.db.write() as conn:
        exists = (
            await conn.execute(select(providers.c.id).where(providers.c.name == clean))
        ).first()
        if exists is not None:
            raise errors.InvalidInput(f"a provider named {clean!r} exists already")
        account_id = await ledger.open_account(conn, kind="provider")
        result = await conn.execute(
            insert(providers)
            .values(name=clean, account_id=account_id, created_at=rt.clock.now())
            .returning(providers.c.id)
        )
        provider_id = int(result.scalar_one())
        first = await _issue_key(rt, conn, kind="provider", owner_id=provider_id)
    return NewProvider(id=provider_id, key=first.key)


async def authenticate_provider(rt: Runtime, key: str | None) -> Provider:
    digest = keys.presented_digest(rt.secret, key, keys.PROVIDER_PREFIX) if key else None
    if digest is None:
        raise errors.SupplierError("bad key", http_status=401)
    row = await rt.db.one(_PROVIDER_BY_KEY, {"digest": digest})
    if row is None:
        raise errors.SupplierError("bad key", http_status=401)
    provider_id, account_id, enabled = row
    if not enabled:
        raise errors.SupplierError("provider disabled", http_status=403)
    return Provider(id=provider_id, account_id=account_id)


_PROVIDER_BY_KEY = (
    select(providers.c.id, providers.c.account_id, providers.c.enabled)
    .join(api_keys, api_keys.c.owner_id == providers.c.id)
    .where(*_valid_key("provider"))
)


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
