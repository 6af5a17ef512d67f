"""The outbox: messages to the outside (FINISH_ACTIVATION to agents, setStatus to upstreams)
written in the transaction of the change they report, and delivered by a worker.

A message is delivered at least once: the worker marks it delivered only after the other
side acknowledged it, so a crash between the two sends it again; every receiver is
idempotent (the protocols say so). ``dedupe_key`` makes writing one message twice a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, update

from otphub.db.engine import Conn, insert_or_nothing
from otphub.db.schema import outbox

_INSERT = insert_or_nothing(outbox, conflict_on=["dedupe_key"])


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    kind: str
    provider_id: int | None
    activation_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: int


async def enqueue(
    conn: Conn,
    *,
    is_sqlite: bool,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    now: int,
    provider_id: int | None = None,
    activation_id: int | None = None,
) -> bool:
    """Write a message, due now; ``False`` if one with this ``dedupe_key`` exists."""
    values = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "provider_id": provider_id,
        "activation_id": activation_id,
        "payload": json.dumps(payload, separators=(",", ":"), sort_keys=True),
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
    statement = _INSERT[is_sqlite].values(values).returning(outbox.c.id)
    result = await conn.execute(statement)
    return result.first() is not None


MESSAGE_COLUMNS = (
    outbox.c.id,
    outbox.c.kind,
    outbox.c.provider_id,
    outbox.c.activation_id,
    outbox.c.payload,
    outbox.c.attempts,
    outbox.c.created_at,
)


def message_of(r: Any) -> Message:
    return Message(
        id=int(r.id),
        kind=str(r.kind),
        provider_id=r.provider_id,
        activation_id=r.activation_id,
        payload=json.loads(r.payload),
        attempts=int(r.attempts),
        created_at=int(r.created_at),
    )


def due_query(*, now: int, limit: int) -> Select[Any]:
    """Undelivered messages whose next attempt is due, oldest first (not those given up:
    ``failed_at`` set); callers narrow it with more conditions."""
    return (
        select(*MESSAGE_COLUMNS)
        .where(
            outbox.c.delivered_at.is_(None),
            outbox.c.failed_at.is_(None),
            outbox.c.next_attempt_at <= now,
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )


async def due(conn: Conn, *, now: int, limit: int, kinds: tuple[str, ...] = ()) -> list[Message]:
    """``due_query``'s messages, of these kinds only if any are given."""
    query = due_query(now=now, limit=limit)
    if kinds:
        query = query.where(outbox.c.kind.in_(kinds))
    return [message_of(r) for r in await conn.execute(query)]


async def claim(conn: Conn, *, message_id: int, attempts: int, until: int) -> bool:
    """Take a due message for one attempt (compare-and-set on its attempt count), pushing
    its next attempt to ``until`` so that no other process sends it meanwhile; ``False``
    if another process took it first."""
    result = await conn.execute(
        update(outbox)
        .where(
            outbox.c.id == message_id,
            outbox.c.attempts == attempts,
            outbox.c.delivered_at.is_(None),
        )
        .values(attempts=attempts + 1, next_attempt_at=until)
    )
    return result.rowcount == 1


async def delivered(conn: Conn, *, message_id: int, now: int) -> None:
    await conn.execute(
        update(outbox).where(outbox.c.id == message_id).values(delivered_at=now, last_error=None)
    )


# Far past any clock: a message given up is out of every due range (and of the due index's
# front) for good.
NEVER = 2**62


async def failed(conn: Conn, *, message_id: int, now: int, error: str) -> None:
    """Give a message up (messages with a bounded number of attempts): never tried again."""
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.delivered_at.is_(None))
        .values(failed_at=now, next_attempt_at=NEVER, last_error=error[:200])
    )


async def retry_later(conn: Conn, *, message_id: int, at: int, error: str) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.delivered_at.is_(None))
        .values(next_attempt_at=at, last_error=error[:200])
    )
