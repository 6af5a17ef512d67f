"""Read-only statements of a provider's account: its record over a period (sales, success
rate, time to the first SMS, refunds, SMS without a code), its ledger movements with the
balance before them, its remote stock. Operator commands, not a customer's request path:
built per call, like db/reports.py.

Periods are [since, until) in Unix seconds, either end open (``None``). Activations count
by their purchase time, journal rows and SMS by their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, not_, or_, select

from otphub.db.engine import Conn
from otphub.db.inventory import median_seconds_to_sms
from otphub.db.ledger import POSTED_KINDS, Kind
from otphub.db.reports import CODE_RECOGNISED
from otphub.db.schema import activations, journal, remote_stock, sms
from otphub.domain.activation import State

_POSTED = [k.value for k in POSTED_KINDS]


@dataclass(frozen=True, slots=True)
class Record:
    finished: int
    cancelled: int
    median_sms_seconds: int | None
    refunds: int
    refunded: int  # the prices given back to customers
    clawed_back: int  # the payouts taken back from the provider
    earned: int  # shares less clawbacks
    paid_out: int
    sms_total: int
    sms_without_code: int


@dataclass(frozen=True, slots=True)
class Movement:
    journal_id: int
    kind: str
    created_at: int
    activation_id: int | None
    amount: int  # signed: what it added to the payable
    note: str | None


@dataclass(frozen=True, slots=True)
class RemoteStockLine:
    service: str
    country_id: int
    count: int
    cost: int | None  # an upstream's own price (the lowest of its operators)


def _within(column: ColumnElement[int], since: int | None, until: int | None) -> list[Any]:
    found: list[Any] = []
    if since is not None:
        found.append(column >= since)
    if until is not None:
        found.append(column < until)
    return found


def _sum(amount: ColumnElement[int], *where: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((and_(*where), amount), else_=0)), 0)


async def record(
    conn: Conn,
    *,
    is_sqlite: bool,
    provider_id: int,
    account_id: int,
    since: int | None,
    until: int | None,
) -> Record:
    bought = [
        activations.c.provider_id == provider_id,
        *_within(activations.c.created_at, since, until),
    ]
    finished, cancelled = (
        await conn.execute(
            select(
                func.count(case((activations.c.state == State.FINISHED.value, 1))),
                func.count(case((activations.c.state == State.CANCELLED.value, 1))),
            ).where(*bought)
        )
    ).one()
    median = (
        await conn.execute(
            select(
                median_seconds_to_sms(
                    literal(provider_id), is_sqlite=is_sqlite, since=since, until=until
                )
            )
        )
    ).scalar()
    # Refunds and clawbacks of this provider's activations; shares and payouts of its
    # account. All by the journal row's own time.
    of_provider = select(activations.c.id).where(activations.c.provider_id == provider_id)
    credit = journal.c.credit_account_id == account_id
    debit = journal.c.debit_account_id == account_id
    is_refund = and_(journal.c.kind == Kind.REFUND.value, journal.c.activation_id.in_(of_provider))
    refunds, refunded, clawed, shared, paid = (
        await conn.execute(
            select(
                func.count(case((is_refund, 1))),
                _sum(journal.c.amount, is_refund),
                _sum(journal.c.amount, journal.c.kind == Kind.CLAWBACK.value, debit),
                _sum(journal.c.amount, journal.c.kind == Kind.SHARE.value, credit),
                _sum(journal.c.amount, journal.c.kind == Kind.PAYOUT.value, debit),
            ).where(
                or_(credit, debit, is_refund),
                *_within(journal.c.created_at, since, until),
            )
        )
    ).one()
    sms_total, sms_without_code = (
        await conn.execute(
            select(func.count(), func.count(case((not_(CODE_RECOGNISED), 1)))).where(
                sms.c.provider_id == provider_id, *_within(sms.c.received_at, since, until)
            )
        )
    ).one()
    return Record(
        finished=int(finished),
        cancelled=int(cancelled),
        median_sms_seconds=None if median is None else int(median),
        refunds=int(refunds),
        refunded=int(refunded),
        clawed_back=int(clawed),
        earned=int(shared) - int(clawed),
        paid_out=int(paid),
        sms_total=int(sms_total),
        sms_without_code=int(sms_without_code),
    )


def _delta(account_id: int) -> ColumnElement[int]:
    return case(
        (journal.c.credit_account_id == account_id, journal.c.amount), else_=-journal.c.amount
    )


def _of_account(account_id: int) -> ColumnElement[bool]:
    return and_(
        journal.c.kind.in_(_POSTED),
        or_(journal.c.credit_account_id == account_id, journal.c.debit_account_id == account_id),
    )


async def balance_before(conn: Conn, *, account_id: int, moment: int) -> int:
    """The account's posted balance from every journal row before ``moment``."""
    found = await conn.execute(
        select(func.coalesce(func.sum(_delta(account_id)), 0)).where(
            _of_account(account_id), journal.c.created_at < moment
        )
    )
    return int(found.scalar_one())


async def movements(
    conn: Conn, *, account_id: int, since: int | None, until: int | None
) -> list[Movement]:
    """Every posted journal row of the account in [since, until), in time order."""
    rows = await conn.execute(
        select(
            journal.c.id,
            journal.c.kind,
            journal.c.created_at,
            journal.c.activation_id,
            _delta(account_id),
            journal.c.note,
        )
        .where(_of_account(account_id), *_within(journal.c.created_at, since, until))
        .order_by(journal.c.created_at, journal.c.id)
    )
    return [Movement(*row) for row in rows]


async def remote_stock_of(conn: Conn, provider_id: int) -> list[RemoteStockLine]:
    """What a remote provider's last successful poll offered, per service and country."""
    rows = await conn.execute(
        select(
            remote_stock.c.service,
            remote_stock.c.country_id,
            func.sum(remote_stock.c.count),
            func.min(remote_stock.c.cost),
        )
        .where(remote_stock.c.provider_id == provider_id, remote_stock.c.count > 0)
        .group_by(remote_stock.c.service, remote_stock.c.country_id)
        .order_by(remote_stock.c.service, remote_stock.c.country_id)
    )
    return [
        RemoteStockLine(str(service), int(country), int(count), None if cost is None else int(cost))
        for service, country, count, cost in rows
    ]
