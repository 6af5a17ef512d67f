"""A customer's own API keys from the web console: the keys of ``services/accounts.py``
(created and listed the same way), revoked by their owner only."""

from __future__ import annotations

from otphub.db import keys as db_keys
from otphub.domain import errors
from otphub.services import accounts
from otphub.services.accounts import KeyInfo, NewKey
from otphub.services.runtime import Runtime

# Enough for rotation; a page of keys stays short.
MAX_ACTIVE_KEYS = 10


async def create(rt: Runtime, *, customer_id: int) -> NewKey:
    """Another key for the customer (shown once by the caller); refused past
    ``MAX_ACTIVE_KEYS`` active ones."""
    found = await accounts.list_keys(rt, kind="customer", owner_id=customer_id)
    if sum(1 for k in found if k.revoked_at is None) >= MAX_ACTIVE_KEYS:
        raise errors.InvalidInput(
            f"You have {MAX_ACTIVE_KEYS} active keys, the most allowed: revoke one first."
        )
    return await accounts.add_key(rt, kind="customer", owner_id=customer_id)


async def listed(rt: Runtime, *, customer_id: int) -> list[KeyInfo]:
    """The customer's keys, active and revoked, newest first."""
    found = await accounts.list_keys(rt, kind="customer", owner_id=customer_id)
    return sorted(found, key=lambda k: k.id, reverse=True)


async def revoke(rt: Runtime, *, customer_id: int, key_id: int) -> KeyInfo:
    """Revoke one of the customer's keys (at once, on every process); ``NotFound`` for a
    key of anybody else, as for a missing one. Revoking a revoked key changes nothing."""
    async with rt.db.write() as conn:
        row = await db_keys.find_key(
            conn, owner_kind="customer", key_id=key_id, owner_id=customer_id
        )
        if row is None:
            raise errors.NotFound(f"no key {key_id}")
        revoked_at = row.revoked_at or rt.clock.now()
        await db_keys.revoke_key(conn, row.id, at=revoked_at)
        return KeyInfo(row.id, row.hint, row.created_at, revoked_at)
