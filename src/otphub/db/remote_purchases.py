"""Statements of purchases from remote providers, between their durable phases (see
``services/remote_purchase.py``): the pending record, its resolution compare-and-set, and
the number a remote provider handed out.

A pending purchase is resolved exactly once: every resolution first locks its row
(``lock_pending``: ``FOR UPDATE`` on PostgreSQL; SQLite's write lock covers it) and only
proceeds while it is still pending, so the purchase's own phase 3 and the recovery of a
crashed one can never both resolve it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, false, func, select, true, update

from otphub.db.activations import IS_FINISHED
from otphub.db.engine import Conn, insert_or_nothing
from otphub.db.schema import activations, numbers, remote_purchases

PENDING = "pending"
ATTACHED = "attached"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PendingPurchase:
    id: int
    customer_id: int
    provider_id: int
    offer_id: int
    service: str
    country_id: int
    operator: str
    price: int
    payout: int
    hold_id: int
    order_id: str | None
    ref: str | None
    created_at: int


_COLUMNS = (
    remote_purchases.c.id,
    remote_purchases.c.customer_id,
    remote_purchases.c.provider_id,
    remote_purchases.c.offer_id,
    remote_purchases.c.service,
    remote_purchases.c.country_id,
    remote_purchases.c.operator,
    remote_purchases.c.price,
    remote_purchases.c.payout,
    remote_purchases.c.hold_id,
    remote_purchases.c.order_id,
    remote_purchases.c.ref,
    remote_purchases.c.created_at,
)


async def insert_pending(
    conn: Conn,
    *,
    customer_id: int,
    provider_id: int,
    offer_id: int,
    service: str,
    country_id: int,
    operator: str,
    price: int,
    payout: int,
    hold_id: int,
    order_id: str | None,
    ref: str | None,
    now: int,
    resolve_after: int,
) -> int:
    result = await conn.execute(
        remote_purchases.insert()
        .values(
            customer_id=customer_id,
            provider_id=provider_id,
            offer_id=offer_id,
            service=service,
            country_id=country_id,
            operator=operator,
            price=price,
            payout=payout,
            hold_id=hold_id,
            state=PENDING,
            order_id=order_id,
            ref=ref,
            created_at=now,
            resolve_after=resolve_after,
        )
        .returning(remote_purchases.c.id)
    )
    return int(result.scalar_one())


async def lock_pending(conn: Conn, purchase_id: int) -> PendingPurchase | None:
    """The purchase, locked, if it is still pending; ``None`` once resolved."""
    row = (
        await conn.execute(
            select(*_COLUMNS)
            .where(remote_purchases.c.id == purchase_id, remote_purchases.c.state == PENDING)
            .with_for_update()
        )
    ).first()
    return None if row is None else PendingPurchase(*row)


async def attach(
    conn: Conn, *, purchase_id: int, activation_id: int, remote_id: str, now: int
) -> bool:
    result = await conn.execute(
        update(remote_purchases)
        .where(remote_purchases.c.id == purchase_id, remote_purchases.c.state == PENDING)
        .values(state=ATTACHED, activation_id=activation_id, remote_id=remote_id, resolved_at=now)
    )
    return result.rowcount == 1


async def fail(
    conn: Conn, *, purchase_id: int, now: int, note: str, remote_id: str | None = None
) -> bool:
    result = await conn.execute(
        update(remote_purchases)
        .where(remote_purchases.c.id == purchase_id, remote_purchases.c.state == PENDING)
        .values(state=FAILED, resolved_at=now, note=note[:200], remote_id=remote_id)
    )
    return result.rowcount == 1


async def overdue_pending(conn: Conn, *, now: int, limit: int = 100) -> list[int]:
    """Pending purchases past ``resolve_after``: left by a crash between the phases."""
    rows = await conn.execute(
        select(remote_purchases.c.id)
        .where(remote_purchases.c.state == PENDING, remote_purchases.c.resolve_after <= now)
        .order_by(remote_purchases.c.resolve_after)
        .limit(limit)
    )
    return [int(r.id) for r in rows]


async def count_pending(conn: Conn, *, customer_id: int) -> int:
    """Pending purchases of the customer: they count toward its live-activation cap."""
    result = await conn.execute(
        select(func.count())
        .select_from(remote_purchases)
        .where(remote_purchases.c.customer_id == customer_id, remote_purchases.c.state == PENDING)
    )
    return int(result.scalar_one())


async def pending_order_exists(conn: Conn, *, customer_id: int, order_id: str) -> bool:
    found = await conn.execute(
        select(remote_purchases.c.id).where(
            remote_purchases.c.customer_id == customer_id,
            remote_purchases.c.order_id == order_id,
            remote_purchases.c.state == PENDING,
        )
    )
    return found.first() is not None


async def state_of(conn: Conn, purchase_id: int) -> str | None:
    found = await conn.execute(
        select(remote_purchases.c.state).where(remote_purchases.c.id == purchase_id)
    )
    value = found.scalar()
    return None if value is None else str(value)


_INSERT_NUMBER = insert_or_nothing(numbers, conflict_on=["provider_id", "phone"])


async def take_remote_number(
    conn: Conn,
    *,
    is_sqlite: bool,
    provider_id: int,
    country_id: int,
    operator: str,
    phone: str,
    service: str,
    now: int,
) -> int | None:
    """The ``numbers`` row of a number a remote provider handed out, marked in use; ``None``
    when that number is in a live activation already, or was finished for this service
    (the partial unique index would refuse its second finish). The row is offline: the
    local claim never takes it; it exists so that PUSH_SMS finds the activation by phone."""
    await conn.execute(
        _INSERT_NUMBER[is_sqlite].values(
            provider_id=provider_id,
            country_id=country_id,
            operator=operator,
            phone=phone,
            online=False,
            in_use=False,
            created_at=now,
        )
    )
    spent = exists().where(
        activations.c.number_id == numbers.c.id, activations.c.service == service, IS_FINISHED
    )
    result = await conn.execute(
        update(numbers)
        .where(
            numbers.c.provider_id == provider_id,
            numbers.c.phone == phone,
            numbers.c.in_use == false(),
            ~spent,
        )
        .values(in_use=true(), online=false(), operator=operator)
        .returning(numbers.c.id)
    )
    row = result.first()
    return None if row is None else int(row[0])
