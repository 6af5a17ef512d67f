"""Statements on customers: their rows, their limits, and the hot reads of their wallet."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from otphub.db.activations import HAS_OVERDUE
from otphub.db.engine import Conn, Database
from otphub.db.schema import accounts, activations, customers


async def insert_customer(
    conn: Conn,
    *,
    name: str,
    account_id: int,
    now: int,
    dialect: str = "sms-activate",
    referral_code: str | None = None,
) -> int:
    result = await conn.execute(
        insert(customers)
        .values(
            name=name,
            account_id=account_id,
            created_at=now,
            dialect=dialect,
            referral_code=referral_code,
        )
        .returning(customers.c.id)
    )
    return int(result.scalar_one())


async def set_dialect(conn: Conn, customer_id: int, dialect: str) -> bool:
    """Whether there was such a customer."""
    result = await conn.execute(
        update(customers).where(customers.c.id == customer_id).values(dialect=dialect)
    )
    return result.rowcount > 0


async def referrer_wallet(conn: Conn, activation_id: int) -> int | None:
    """The wallet of the customer whose referral code the activation's ``ref`` is; ``None``
    when it names nobody, or the buyer themselves (nobody refers themselves)."""
    referrer = customers.alias("referrer")
    row = (
        await conn.execute(
            select(referrer.c.account_id)
            .select_from(activations)
            .join(referrer, referrer.c.referral_code == activations.c.ref)
            .where(activations.c.id == activation_id, referrer.c.id != activations.c.customer_id)
        )
    ).first()
    return None if row is None else int(row[0])


async def exists(conn: Conn, customer_id: int) -> bool:
    found = await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))
    return found.first() is not None


async def account_of(conn: Conn, customer_id: int) -> int | None:
    """The customer's wallet account; ``None`` if there is no such customer."""
    found = await conn.execute(select(customers.c.account_id).where(customers.c.id == customer_id))
    value = found.scalar_one_or_none()
    return int(value) if value is not None else None


async def update_limits(conn: Conn, customer_id: int, **values: int | None) -> None:
    """Set some of ``rate_limit``, ``max_live`` and ``banned_until``."""
    await conn.execute(update(customers).where(customers.c.id == customer_id).values(**values))


# The hot reads, built once (see Database.one).
_AVAILABLE = select(accounts.c.balance - accounts.c.held).where(
    accounts.c.id == bindparam("account_id")
)
_AVAILABLE_AND_OVERDUE = select(
    accounts.c.balance - accounts.c.held,
    HAS_OVERDUE.scalar_subquery(),
).where(accounts.c.id == bindparam("account_id"))


async def available(db: Database, account_id: int) -> int:
    """A wallet's available money (balance minus holds), outside any transaction."""
    row = await db.one(_AVAILABLE, {"account_id": account_id})
    assert row is not None  # every customer has a wallet
    return int(row[0])


async def available_and_overdue(
    db: Database, *, account_id: int, customer_id: int, now: int
) -> tuple[int, bool]:
    """The wallet's available money and whether the customer has an activation past its
    deadline (whose hold the money does not reflect yet), in one statement."""
    row = await db.one(
        _AVAILABLE_AND_OVERDUE, {"account_id": account_id, "customer_id": customer_id, "now": now}
    )
    assert row is not None  # every customer has a wallet
    available_now, overdue = row
    return int(available_now), overdue is not None
