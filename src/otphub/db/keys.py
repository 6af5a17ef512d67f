"""Statements on API keys, and the authentication lookups every request runs.

Only a keyed hash of a key is stored (``domain/keys.py``). A revoked key is refused from
the next request on, in every process, because nothing caches a key: each request looks
its key up here.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, and_, bindparam, insert, select, update

from otphub.db.activations import ACTIVATION_COLUMNS
from otphub.db.engine import Conn, Database, Row
from otphub.db.schema import activations, api_keys, customers, providers

OwnerKind = Literal["customer", "provider"]


class KeyRow(NamedTuple):
    id: int
    hint: str
    created_at: int
    revoked_at: int | None


async def insert_key(
    conn: Conn, *, owner_kind: OwnerKind, owner_id: int, key_hash: str, hint: str, now: int
) -> int:
    result = await conn.execute(
        insert(api_keys)
        .values(
            owner_kind=owner_kind,
            owner_id=owner_id,
            key_hash=key_hash,
            hint=hint,
            created_at=now,
        )
        .returning(api_keys.c.id)
    )
    return int(result.scalar_one())


async def find_key(
    conn: Conn,
    *,
    owner_kind: OwnerKind,
    key_id: int | None = None,
    key_hash: str | None = None,
    owner_id: int | None = None,
) -> KeyRow | None:
    """The key of this kind with this id, or else with this hash (of this owner only, when
    ``owner_id`` is given)."""
    condition = api_keys.c.id == key_id if key_id is not None else api_keys.c.key_hash == key_hash
    query = select(
        api_keys.c.id, api_keys.c.hint, api_keys.c.created_at, api_keys.c.revoked_at
    ).where(condition, api_keys.c.owner_kind == owner_kind)
    if owner_id is not None:
        query = query.where(api_keys.c.owner_id == owner_id)
    row = (await conn.execute(query)).first()
    return KeyRow(*row) if row is not None else None


async def revoke_key(conn: Conn, key_id: int, *, at: int) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=at))


async def keys_of(conn: Conn, *, owner_kind: OwnerKind, owner_id: int) -> list[KeyRow]:
    rows = await conn.execute(
        select(api_keys.c.id, api_keys.c.hint, api_keys.c.created_at, api_keys.c.revoked_at)
        .where(api_keys.c.owner_kind == owner_kind, api_keys.c.owner_id == owner_id)
        .order_by(api_keys.c.id)
    )
    return [KeyRow(*r) for r in rows]


# Every customer-API request runs one of these: built once (see Database.one).
_KEY_COLUMNS = (
    api_keys.c.id,
    customers.c.id,
    customers.c.account_id,
    customers.c.banned_until,
    customers.c.max_live,
    customers.c.rate_limit,
    customers.c.dialect,
)
# A customer's row starts with: key id, customer id, account id, banned_until, max_live,
# rate_limit, dialect; ``customer_and_activation`` adds the activation's
# ``ACTIVATION_COLUMNS``.
CUSTOMER_WIDTH = len(_KEY_COLUMNS)


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
_PROVIDER_BY_KEY = (
    select(providers.c.id, providers.c.account_id, providers.c.enabled)
    .join(api_keys, api_keys.c.owner_id == providers.c.id)
    .where(*_valid_key("provider"))
)


async def customer_by_key(db: Database, digest: str) -> Row | None:
    """The customer of the unrevoked customer key with this digest (``CUSTOMER_WIDTH``
    columns), outside any transaction."""
    return await db.one(_CUSTOMER_BY_KEY, {"digest": digest})


async def customer_and_activation(
    db: Database, digest: str, activation_id: int | None
) -> Row | None:
    """Like ``customer_by_key``, followed by the columns of that customer's activation
    ``activation_id`` (all ``None``: no such activation of theirs). Status polls are most of
    the traffic: one round trip instead of two."""
    return await db.one(
        _CUSTOMER_AND_ACTIVATION, {"activation_id": activation_id, "digest": digest}
    )


_DIALECT_OF_ANY_KEY = (
    select(customers.c.dialect)
    .join(api_keys, api_keys.c.owner_id == customers.c.id)
    .where(api_keys.c.key_hash == bindparam("digest"), api_keys.c.owner_kind == "customer")
)


async def dialect_of_any_key(db: Database, digest: str) -> str | None:
    """The dialect of the customer of the customer key with this digest, revoked or not:
    read only to word a refusal (a revoked key, a ban) the way that customer's client
    expects."""
    row = await db.one(_DIALECT_OF_ANY_KEY, {"digest": digest})
    return None if row is None else str(row[0])


async def provider_by_key(db: Database, digest: str) -> Row | None:
    """(provider id, account id, enabled) of the unrevoked provider key with this digest."""
    return await db.one(_PROVIDER_BY_KEY, {"digest": digest})
