"""The operator dashboard's figures: activations and money per time bucket over a bounded
window (the last hour by minute, the last day by hour). Each is one grouped statement over
the window only (``ix_activations_created``, ``ix_journal_created``), so the dashboard
costs the same however long the history is."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, func, select

from otphub.db.engine import Conn
from otphub.db.ledger import POSTED_KINDS, Kind
from otphub.db.schema import accounts, activations, journal
from otphub.domain.activation import ENDED_STATES, State


@dataclass(frozen=True, slots=True)
class ActivityBucket:
    index: int  # 0 = the oldest bucket of the window
    bought: int
    finished: int
    ended: int  # finished or cancelled
    with_sms: int
    sms_seconds: int  # the sum, over those with an SMS, of purchase to (last) SMS


@dataclass(frozen=True, slots=True)
class MoneyBucket:
    index: int
    revenue: int  # what the revenue account gained (posted rows; negative: lost)
    held: int  # holds placed
    resolved: int  # holds captured or released


async def activity(conn: Conn, *, since: int, width: int, count: int) -> list[ActivityBucket]:
    """Activations bought in ``[since, since + width * count)``, per bucket of ``width``
    seconds (by the time they were bought)."""
    bucket = ((activations.c.created_at - since) // width).label("bucket")
    ended = [s.value for s in ENDED_STATES]
    has_sms = activations.c.sms_at.is_not(None)
    rows = await conn.execute(
        select(
            bucket,
            func.count(),
            func.sum(case((activations.c.state == State.FINISHED.value, 1), else_=0)),
            func.sum(case((activations.c.state.in_(ended), 1), else_=0)),
            func.sum(case((has_sms, 1), else_=0)),
            func.sum(case((has_sms, activations.c.sms_at - activations.c.created_at), else_=0)),
        )
        .where(activations.c.created_at >= since, activations.c.created_at < since + width * count)
        .group_by(bucket)
    )
    return [ActivityBucket(*(int(v or 0) for v in row)) for row in rows]


async def money(
    conn: Conn, *, revenue_account: int, since: int, width: int, count: int
) -> list[MoneyBucket]:
    """Journal rows written in the window, per bucket: the revenue account's gain, holds
    placed and holds resolved."""
    bucket = ((journal.c.created_at - since) // width).label("bucket")
    posted = journal.c.kind.in_([k.value for k in POSTED_KINDS])
    gain = case(
        (and_(posted, journal.c.credit_account_id == revenue_account), journal.c.amount),
        (and_(posted, journal.c.debit_account_id == revenue_account), -journal.c.amount),
        else_=0,
    )
    rows = await conn.execute(
        select(
            bucket,
            func.sum(gain),
            func.sum(case((journal.c.kind == Kind.HOLD.value, journal.c.amount), else_=0)),
            func.sum(
                case(
                    (
                        journal.c.kind.in_([Kind.CAPTURE.value, Kind.RELEASE.value]),
                        journal.c.amount,
                    ),
                    else_=0,
                )
            ),
        )
        .where(journal.c.created_at >= since, journal.c.created_at < since + width * count)
        .group_by(bucket)
    )
    return [MoneyBucket(*(int(v or 0) for v in row)) for row in rows]


async def held_now(conn: Conn) -> int:
    """The sum of every wallet's open holds."""
    value = await conn.execute(
        select(func.coalesce(func.sum(accounts.c.held), 0)).where(accounts.c.kind == "customer")
    )
    return int(value.scalar_one())


async def held_after(conn: Conn, *, since: int) -> tuple[int, int]:
    """Holds placed and resolved at or after ``since`` (to walk the open holds back from
    now to the window's end)."""
    row = (
        await conn.execute(
            select(
                func.coalesce(
                    func.sum(case((journal.c.kind == Kind.HOLD.value, journal.c.amount), else_=0)),
                    0,
                ),
                func.coalesce(
                    func.sum(
                        case(
                            (
                                journal.c.kind.in_([Kind.CAPTURE.value, Kind.RELEASE.value]),
                                journal.c.amount,
                            ),
                            else_=0,
                        )
                    ),
                    0,
                ),
            ).where(journal.c.created_at >= since)
        )
    ).one()
    return int(row[0]), int(row[1])
