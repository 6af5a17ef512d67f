"""Facts about the deployment as a whole that start-up needs."""

from __future__ import annotations

from sqlalchemy import select

from otphub.db.engine import Conn
from otphub.db.schema import api_keys

_ANY_KEY = select(api_keys.c.id).limit(1)


async def holds_api_keys(conn: Conn) -> bool:
    """Whether any customer or provider key was ever issued (revoked ones count: their
    hashes were made with the secret too)."""
    return (await conn.execute(_ANY_KEY)).first() is not None
