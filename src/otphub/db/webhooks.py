"""Customers' webhook URLs, and what the outbox knows of their deliveries.

A webhook's messages are outbox rows of kind ``webhook`` whose ``dedupe_key`` is
``webhook:<webhook id>:<sms id>``: the key both makes one SMS one message per URL and
names the webhook a message belongs to (the outbox has no column for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, select, update

from otphub.db.engine import Conn
from otphub.db.outbox import NEVER, Message, due_query, message_of
from otphub.db.schema import customers, outbox, webhooks

KIND = "webhook"


def dedupe_key(webhook_id: int, sms_id: int) -> str:
    return f"{KIND}:{webhook_id}:{sms_id}"


def _key_prefix(webhook_id: int) -> str:
    # Ids are digits, so neither LIKE wildcard can appear in the prefix.
    return f"{KIND}:{webhook_id}:"


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: int
    customer_id: int
    url: str
    sealed_secret: str
    created_at: int
    removed_at: int | None


@dataclass(frozen=True, slots=True)
class LatestDelivery:
    """The newest message of a webhook."""

    message_id: int
    attempts: int
    next_attempt_at: int
    delivered_at: int | None
    failed_at: int | None
    last_error: str | None


_COLUMNS = (
    webhooks.c.id,
    webhooks.c.customer_id,
    webhooks.c.url,
    webhooks.c.sealed_secret,
    webhooks.c.created_at,
    webhooks.c.removed_at,
)


def _row(r: Any) -> WebhookRow:
    return WebhookRow(
        id=int(r.id),
        customer_id=int(r.customer_id),
        url=str(r.url),
        sealed_secret=str(r.sealed_secret),
        created_at=int(r.created_at),
        removed_at=r.removed_at,
    )


async def lock_customer(conn: Conn, customer_id: int) -> bool:
    """Lock the customer's row until the transaction ends (PostgreSQL; SQLite's write lock
    covers it), so that two registrations at once cannot both pass the limit; ``False``
    when there is no such customer."""
    found = await conn.execute(
        select(customers.c.id).where(customers.c.id == customer_id).with_for_update()
    )
    return found.first() is not None


async def count_live(conn: Conn, customer_id: int) -> int:
    found = await conn.execute(
        select(func.count())
        .select_from(webhooks)
        .where(webhooks.c.customer_id == customer_id, webhooks.c.removed_at.is_(None))
    )
    return int(found.scalar_one())


async def insert_webhook(
    conn: Conn, *, customer_id: int, url: str, sealed_secret: str, now: int
) -> int:
    result = await conn.execute(
        insert(webhooks)
        .values(customer_id=customer_id, url=url, sealed_secret=sealed_secret, created_at=now)
        .returning(webhooks.c.id)
    )
    return int(result.scalar_one())


async def live_of(conn: Conn, customer_id: int) -> list[WebhookRow]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(webhooks.c.customer_id == customer_id, webhooks.c.removed_at.is_(None))
        .order_by(webhooks.c.id)
    )
    return [_row(r) for r in rows]


async def get(conn: Conn, webhook_id: int) -> WebhookRow | None:
    found = (await conn.execute(select(*_COLUMNS).where(webhooks.c.id == webhook_id))).first()
    return None if found is None else _row(found)


async def mark_removed(conn: Conn, webhook_id: int, *, now: int) -> bool:
    result = await conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id, webhooks.c.removed_at.is_(None))
        .values(removed_at=now)
    )
    return result.rowcount == 1


# The statement of an SMS push (one per matched SMS): the ids of the customer's live URLs.
_LIVE_IDS = (
    select(webhooks.c.id)
    .where(webhooks.c.customer_id == bindparam("customer_id"), webhooks.c.removed_at.is_(None))
    .order_by(webhooks.c.id)
)


async def live_ids(conn: Conn, customer_id: int) -> list[int]:
    return [int(r[0]) for r in await conn.execute(_LIVE_IDS, {"customer_id": customer_id})]


def _pending_of(webhook_id: int) -> ColumnElement[bool]:
    return and_(
        outbox.c.kind == KIND,
        outbox.c.dedupe_key.like(_key_prefix(webhook_id) + "%"),
        outbox.c.delivered_at.is_(None),
        outbox.c.failed_at.is_(None),
    )


async def drop_pending(conn: Conn, webhook_id: int, *, now: int, reason: str) -> int:
    """Mark every undelivered message of a webhook failed (never sent); how many."""
    result = await conn.execute(
        update(outbox)
        .where(_pending_of(webhook_id))
        .values(failed_at=now, next_attempt_at=NEVER, last_error=reason[:200])
    )
    return int(result.rowcount)


async def due_messages(
    conn: Conn, *, now: int, limit: int, skip_webhooks: frozenset[int] = frozenset()
) -> list[Message]:
    """Due webhook messages, oldest first, leaving out those of ``skip_webhooks`` (the ones
    a round has taken enough of already): a backlog of one URL then cannot hide every
    other URL's messages behind it."""
    query = due_query(now=now, limit=limit).where(outbox.c.kind == KIND)
    for webhook_id in sorted(skip_webhooks):
        query = query.where(outbox.c.dedupe_key.not_like(_key_prefix(webhook_id) + "%"))
    return [message_of(r) for r in await conn.execute(query)]


async def latest_delivery(conn: Conn, webhook_id: int) -> LatestDelivery | None:
    found = (
        await conn.execute(
            select(
                outbox.c.id,
                outbox.c.attempts,
                outbox.c.next_attempt_at,
                outbox.c.delivered_at,
                outbox.c.failed_at,
                outbox.c.last_error,
            )
            .where(
                outbox.c.kind == KIND,
                outbox.c.dedupe_key.like(_key_prefix(webhook_id) + "%"),
            )
            .order_by(outbox.c.id.desc())
            .limit(1)
        )
    ).first()
    if found is None:
        return None
    return LatestDelivery(
        message_id=int(found.id),
        attempts=int(found.attempts),
        next_attempt_at=int(found.next_attempt_at),
        delivered_at=found.delivered_at,
        failed_at=found.failed_at,
        last_error=found.last_error,
    )


def test_key(webhook_id: int, now: int) -> str:
    """A test message's dedupe key: one per webhook and second (a double click sends one)."""
    return f"{_key_prefix(webhook_id)}test-{now}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message of a webhook, as the outbox keeps it."""

    message_id: int
    is_test: bool
    activation_id: int | None
    created_at: int
    attempts: int
    next_attempt_at: int
    delivered_at: int | None
    failed_at: int | None
    last_error: str | None


async def recent_deliveries(conn: Conn, webhook_id: int, *, limit: int) -> list[Delivery]:
    """The webhook's latest ``limit`` messages, newest first."""
    rows = await conn.execute(
        select(
            outbox.c.id,
            outbox.c.dedupe_key,
            outbox.c.activation_id,
            outbox.c.created_at,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.delivered_at,
            outbox.c.failed_at,
            outbox.c.last_error,
        )
        .where(outbox.c.kind == KIND, outbox.c.dedupe_key.like(_key_prefix(webhook_id) + "%"))
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    prefix = _key_prefix(webhook_id) + "test-"
    return [
        Delivery(
            message_id=int(r.id),
            is_test=str(r.dedupe_key).startswith(prefix),
            activation_id=r.activation_id,
            created_at=int(r.created_at),
            attempts=int(r.attempts),
            next_attempt_at=int(r.next_attempt_at),
            delivered_at=r.delivered_at,
            failed_at=r.failed_at,
            last_error=r.last_error,
        )
        for r in rows
    ]
