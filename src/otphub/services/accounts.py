"""Customers and providers: creating them, their keys, topping up, authenticating."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias, cast

from otphub.db import customers, ledger, providers
from otphub.db import keys as db_keys
from otphub.db import logins as db_logins
from otphub.db.engine import Conn, Row
from otphub.domain import dialects, errors, keys, referrals, sealing
from otphub.domain.activation import Activation
from otphub.domain.supply import ProviderKind
from otphub.services.operator_actions import SHELL, Actor, record
from otphub.services.runtime import Runtime

OwnerKind: TypeAlias = db_keys.OwnerKind
_PREFIX: dict[OwnerKind, str] = {
    "customer": keys.CUSTOMER_PREFIX,
    "provider": keys.PROVIDER_PREFIX,
}
_OWNER_EXISTS = {"customer": customers.exists, "provider": providers.exists}


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    account_id: int
    max_live: int | None
    rate_limit: int | None = None
    key_id: int = 0
    # The shapes of the answers this customer's client expects (domain/dialects.py).
    dialect: str = dialects.DEFAULT


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
    # The console's sign-up form takes a name from anyone: PostgreSQL cannot store a NUL.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise errors.InvalidInput("a name must not hold control characters")
    return name


async def _issue_key(rt: Runtime, conn: Conn, *, kind: OwnerKind, owner_id: int) -> NewKey:
    key = keys.new_key(_PREFIX[kind])
    key_id = await db_keys.insert_key(
        conn,
        owner_kind=kind,
        owner_id=owner_id,
        key_hash=keys.key_hash(rt.secret, key),
        hint=keys.hint(key),
        now=rt.clock.now(),
    )
    return NewKey(id=key_id, key=key)


async def _require_owner(conn: Conn, kind: OwnerKind, owner_id: int) -> None:
    if not await _OWNER_EXISTS[kind](conn, owner_id):
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
        if key.isascii() and key.isdigit():
            # An id past any BIGINT is no key's id: not found, rather than a driver error.
            key_id = int(key) if len(key) <= 18 else None
            row = (
                None
                if key_id is None
                else await db_keys.find_key(conn, owner_kind=kind, key_id=key_id)
            )
        else:
            row = await db_keys.find_key(
                conn, owner_kind=kind, key_hash=keys.key_hash(rt.secret, key)
            )
        if row is None:
            raise errors.NotFound(f"no {kind} key {keys.hint(key)!r}")
        revoked_at = row.revoked_at or rt.clock.now()
        await db_keys.revoke_key(conn, row.id, at=revoked_at)
        return KeyInfo(row.id, row.hint, row.created_at, revoked_at)


async def list_keys(rt: Runtime, *, kind: OwnerKind, owner_id: int) -> list[KeyInfo]:
    async with rt.db.read() as conn:
        await _require_owner(conn, kind, owner_id)
        rows = await db_keys.keys_of(conn, owner_kind=kind, owner_id=owner_id)
        return [KeyInfo(r.id, r.hint, r.created_at, r.revoked_at) for r in rows]


async def add_customer(
    rt: Runtime,
    *,
    name: str,
    balance: int = 0,
    dialect: str = dialects.DEFAULT,
    login: tuple[str, str] | None = None,
    by: Actor | None = SHELL,
) -> NewCustomer:
    """A customer with its wallet, its referral code and its first key; ``login``, an email
    (clean, see domain/logins.py) and a password hash, signs them in to the web console.
    Recorded as ``by``'s change; ``None`` for a customer who signed up themselves (no
    operator's change). The record says a password was set, never the hash, nor the key."""
    now = rt.clock.now()
    clean, spoken = _name(name), dialects.checked(dialect)
    async with rt.db.write() as conn:
        if login is not None:
            await claim_email(rt, conn, login[0])
        account_id = await ledger.open_account(conn, kind="customer")
        customer_id = await customers.insert_customer(
            conn,
            name=clean,
            account_id=account_id,
            now=now,
            dialect=spoken,
            # 50 random bits: a clash with another customer's code is not worth a retry
            # (the unique index would refuse it, and nothing would be created).
            referral_code=referrals.new_code(),
        )
        if balance > 0:
            await ledger.top_up(
                conn, system=rt.accounts(), account_id=account_id, amount=balance, now=now
            )
        if login is not None:
            await db_logins.set_customer_login(
                conn, customer_id=customer_id, email=login[0], password_hash=login[1]
            )
        first = await _issue_key(rt, conn, kind="customer", owner_id=customer_id)
        if by is not None:
            login_detail = {} if login is None else {"email": login[0], "password": "set"}
            await record(
                rt,
                conn,
                by,
                "customer.add",
                f"customer {customer_id}",
                name=clean,
                balance=balance,
                dialect=spoken,
                **login_detail,
                key_id=first.id,
            )
    return NewCustomer(id=customer_id, api_key=first.key)


async def claim_email(rt: Runtime, conn: Conn, email: str, *, customer_id: int = 0) -> None:
    """Refuse an email that another customer (not ``customer_id``) or an operator signs in
    with; holds the email until the transaction ends, so two cannot take it at once."""
    await db_logins.lock_email(conn, is_sqlite=rt.db.is_sqlite, email=email)
    owner = await db_logins.login_by_email(conn, email)
    if owner is not None and not (owner.kind == "customer" and owner.id == customer_id):
        raise errors.EmailTaken(f"{email} is already used by another account")


async def top_up(rt: Runtime, *, customer_id: int, amount: int, by: Actor = SHELL) -> int:
    """Credit a customer's wallet; returns the new available balance. Recorded as ``by``'s
    change (services/operator_actions.py)."""
    if amount <= 0:
        raise errors.InvalidAmount("a top-up must be positive")
    async with rt.db.write() as conn:
        account_id = await customers.account_of(conn, customer_id)
        if account_id is None:
            raise errors.NotFound(f"no customer with id {customer_id}")
        await ledger.top_up(
            conn, system=rt.accounts(), account_id=account_id, amount=amount, now=rt.clock.now()
        )
        await record(rt, conn, by, "customer.top_up", f"customer {customer_id}", amount=amount)
        return await ledger.available(conn, account_id)


async def set_limits(
    rt: Runtime,
    *,
    customer_id: int,
    rate_limit: int | None = None,
    max_live: int | None = None,
    banned_until: int | None = None,
    unban: bool = False,
    by: Actor = SHELL,
) -> None:
    """Per-customer overrides; ``None`` leaves a value as it is. A change is recorded as
    ``by``'s (a ban, an unban, or new limits)."""
    values: dict[str, int | None] = {}
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
            await customers.update_limits(conn, customer_id, **values)
            await record(rt, conn, by, _limits_action(values), f"customer {customer_id}", **values)


def _limits_action(values: dict[str, int | None]) -> str:
    if "banned_until" in values:
        return "customer.unban" if values["banned_until"] is None else "customer.ban"
    return "customer.limits"


async def set_dialect(rt: Runtime, *, customer_id: int, dialect: str) -> str:
    """Change the shapes of a customer's answers, from their next request on (every request
    reads the dialect with the key). Returns the dialect's name as stored."""
    spoken = dialects.checked(dialect)
    async with rt.db.write() as conn:
        if not await customers.set_dialect(conn, customer_id, spoken):
            raise errors.NotFound(f"no customer with id {customer_id}")
    return spoken


async def ban_customer(
    rt: Runtime, *, customer_id: int, until: int | None, by: Actor = SHELL
) -> None:
    await set_limits(rt, customer_id=customer_id, banned_until=until, unban=until is None, by=by)


async def authenticate_customer(rt: Runtime, api_key: str | None) -> Customer:
    row = await db_keys.customer_by_key(rt.db, _customer_digest(rt, api_key))
    if row is None:
        raise errors.BadKey()
    return _customer(rt, row)


async def authenticate_polling(
    rt: Runtime, api_key: str | None, activation_id: int | None
) -> tuple[Customer, Activation | None]:
    """The key's customer and, read by the same statement, that customer's activation
    ``activation_id`` (``None``: no such activation of theirs, or no id). Status polls are
    most of the traffic: one round trip instead of two."""
    row = await db_keys.customer_and_activation(rt.db, _customer_digest(rt, api_key), activation_id)
    if row is None:
        raise errors.BadKey()
    customer = _customer(rt, row)
    polled = row[db_keys.CUSTOMER_WIDTH :]
    return customer, None if polled[0] is None else Activation.from_row(polled)


def _customer_digest(rt: Runtime, api_key: str | None) -> str:
    if api_key is None:
        raise errors.NoKey()
    digest = keys.presented_digest(rt.secret, api_key, keys.CUSTOMER_PREFIX)
    if digest is None:
        raise errors.BadKey()
    return digest


def customer_of_session(rt: Runtime, columns: tuple[Any, ...]) -> Customer:
    """The customer signed in to the web console (``db.logins.SessionRow.customer``), with
    the same rules as a key's: a banned one is refused."""
    return _customer(rt, cast(Row, columns))


def _customer(rt: Runtime, row: Row) -> Customer:
    """The customer of a row that starts with ``db_keys.CUSTOMER_WIDTH`` columns; a banned
    one is refused."""
    key_id, customer_id, account_id, banned_until, max_live, rate_limit, dialect = row[
        : db_keys.CUSTOMER_WIDTH
    ]
    if banned_until is not None and banned_until > rt.clock.now():
        until = datetime.fromtimestamp(banned_until, UTC).astimezone(rt.tz)
        raise errors.Banned(until.strftime("%Y-%m-%d %H-%M-%S"))
    return Customer(
        id=customer_id,
        account_id=account_id,
        max_live=max_live,
        rate_limit=rate_limit,
        key_id=key_id,
        dialect=dialect,
    )


async def refused_dialect(rt: Runtime, api_key: str | None) -> str:
    """The dialect to word a refusal of this key in, before any customer was accepted: the
    customer's for a revoked key or a banned customer; the default when there is no key or
    the key is nobody's (no customer to ask). Read only on that refusal path."""
    if not api_key:
        return dialects.DEFAULT
    digest = keys.presented_digest(rt.secret, api_key, keys.CUSTOMER_PREFIX)
    if digest is None:
        return dialects.DEFAULT
    return await db_keys.dialect_of_any_key(rt.db, digest) or dialects.DEFAULT


async def balance(rt: Runtime, customer: Customer) -> int:
    return await customers.available(rt.db, customer.account_id)


async def add_provider(
    rt: Runtime,
    *,
    name: str,
    agent_url: str | None = None,
    upstream_url: str | None = None,
    upstream_key: str | None = None,
    markup_bp: int = 0,
    markup_amount: int = 0,
    by: Actor = SHELL,
) -> NewProvider:
    """A provider and its first key. With ``agent_url`` an SMSHub-protocol agent: its key
    is also kept sealed, since OTPHub sends it in every request to the agent. With
    ``upstream_url`` and ``upstream_key`` an upstream service OTPHub buys from. Recorded as
    ``by``'s change: that keys were issued or set, never the keys themselves."""
    clean = _name(name)
    kind, endpoint, secret = remote_terms(
        agent_url=agent_url, upstream_url=upstream_url, upstream_key=upstream_key
    )
    if markup_bp < 0 or markup_amount < 0:
        raise errors.InvalidAmount("a markup cannot be negative")
    is_upstream = kind is ProviderKind.UPSTREAM
    async with rt.db.write() as conn:
        if await providers.named(conn, clean) is not None:
            raise errors.InvalidInput(f"a provider named {clean!r} exists already")
        account_id = await ledger.open_account(conn, kind="provider")
        provider_id = await providers.insert_provider(
            conn,
            name=clean,
            account_id=account_id,
            now=rt.clock.now(),
            kind=kind.value,
            endpoint_url=endpoint,
            sealed_secret=None if secret is None else sealing.seal(rt.secret, secret),
            markup_bp=markup_bp if is_upstream else None,
            markup_amount=markup_amount if is_upstream else None,
        )
        first = await _issue_key(rt, conn, kind="provider", owner_id=provider_id)
        if kind is ProviderKind.AGENT:
            await providers.set_remote(
                conn, provider_id, sealed_secret=sealing.seal(rt.secret, first.key)
            )
        terms: dict[str, object] = {}
        if endpoint is not None:
            terms["url"] = endpoint
        if is_upstream:
            terms.update(upstream_key="set", markup_bp=markup_bp, markup_amount=markup_amount)
        await record(
            rt,
            conn,
            by,
            "provider.add",
            f"provider {provider_id}",
            name=clean,
            kind=kind.value,
            **terms,
            key_id=first.id,
        )
    if kind is not ProviderKind.LOCAL:
        rt.remote_supply = True  # this process's purchases may call out from now on
    return NewProvider(id=provider_id, key=first.key)


def checked_url(raw: str, *, what: str) -> str:
    """An http(s) URL with a host, as given; anything else is refused with ``what`` named."""
    url = raw.strip()
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    if scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise errors.InvalidInput(f"{what} must be an http:// or https:// URL, not {raw!r}")
    return url


def remote_terms(
    *, agent_url: str | None, upstream_url: str | None, upstream_key: str | None
) -> tuple[ProviderKind, str | None, str | None]:
    """The kind, endpoint and secret a new provider's options describe."""
    if agent_url is not None and (upstream_url is not None or upstream_key is not None):
        raise errors.InvalidInput("a provider is an agent or an upstream, not both")
    if agent_url is not None:
        return ProviderKind.AGENT, checked_url(agent_url, what="--agent-url"), None
    if upstream_url is not None or upstream_key is not None:
        if upstream_url is None or not (upstream_key or "").strip():
            raise errors.InvalidInput("an upstream needs both --upstream-url and --upstream-key")
        assert upstream_key is not None
        return (
            ProviderKind.UPSTREAM,
            checked_url(upstream_url, what="--upstream-url"),
            upstream_key.strip(),
        )
    return ProviderKind.LOCAL, None, None


async def authenticate_provider(rt: Runtime, key: str | None) -> Provider:
    digest = keys.presented_digest(rt.secret, key, keys.PROVIDER_PREFIX) if key else None
    if digest is None:
        raise errors.SupplierError("bad key", http_status=401)
    row = await db_keys.provider_by_key(rt.db, digest)
    if row is None:
        raise errors.SupplierError("bad key", http_status=401)
    provider_id, account_id, enabled = row
    if not enabled:
        raise errors.SupplierError("provider disabled", http_status=403)
    return Provider(id=provider_id, account_id=account_id)


async def provider_balance(rt: Runtime, provider_id: int) -> int:
    async with rt.db.read() as conn:
        value = await providers.payable(conn, provider_id)
    if value is None:
        raise errors.NotFound(f"no provider with id {provider_id}")
    return value
