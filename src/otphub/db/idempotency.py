"""Statements on idempotency keys (API v1's ``Idempotency-Key`` on purchases).

A row is claimed (status ``NULL``) before the purchase, in its own transaction, and gets
its answer after it; see ``services/idempotency.py`` for the rules.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import delete, select, update

from otphub.db.engine import Conn, insert_or_nothing
from otphub.db.schema import idempotency_keys

_CLAIM = insert_or_nothing(idempotency_keys, conflict_on=["customer_id", "key"])


class KeyRow(NamedTuple):
    request_hash: str
    status_code: int | None  # None: claimed, no answer stored yet
    response: str | None
    activation_id: int | None
    created_at: int


async def claim(
    conn: Conn, *, is_sqlite: bool, customer_id: int, key: str, request_hash: str, now: int
) -> bool:
    """Insert the key without an answer; ``False`` when the customer has it already."""
    result = await conn.execute(
        _CLAIM[is_sqlite].values(
            customer_id=customer_id, key=key, request_hash=request_hash, created_at=now
        )
    )
    return bool(result.rowcount)


async def get(conn: Conn, *, customer_id: int, key: str, for_update: bool = False) -> KeyRow | None:
    query = select(
        idempotency_keys.c.request_hash,
        idempotency_keys.c.status_code,
        idempotency_keys.c.response,
        idempotency_keys.c.activation_id,
        idempotency_keys.c.created_at,
    ).where(idempotency_keys.c.customer_id == customer_id, idempotency_keys.c.key == key)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return KeyRow(*row) if row is not None else None


async def answer(
    conn: Conn,
    *,
    customer_id: int,
    key: str,
    created_at: int,
    status_code: int,
    response: str,
    activation_id: int | None,
) -> None:
    """Store the answer of the claim made at ``created_at`` (not of a later claim of the
    same key, made after this one expired)."""
    await conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.customer_id == customer_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at == created_at,
        )
        .values(status_code=status_code, response=response, activation_id=activation_id)
    )


async def release(conn: Conn, *, customer_id: int, key: str, created_at: int) -> None:
    """Forget the claim made at ``created_at``."""
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.customer_id == customer_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at == created_at,
        )
    )


async def purge(conn: Conn, *, claimed_by: int) -> int:
    """Delete every key claimed at or before ``claimed_by``; how many."""
    result = await conn.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at <= claimed_by)
    )
    return int(result.rowcount)
