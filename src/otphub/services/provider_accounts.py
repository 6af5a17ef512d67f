"""A provider's account: its record and stock (``provider stats``), payouts (``provider
payout``), and its statement (``provider statement``), every figure read from the rows the
sales left (activations, SMS, the journal), none kept as a counter.

Dates are days in the deployment's time zone (``OTPHUB_TIME_ZONE``): ``--from`` is the
start of its day, ``--to`` includes its whole day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from otphub.db import audit as db_audit
from otphub.db import inventory, ledger, provider_accounts, providers, reports
from otphub.db.engine import Conn
from otphub.db.provider_accounts import Movement, Record, RemoteStockLine
from otphub.domain import errors
from otphub.services.disputes import clean_reason
from otphub.services.operator_actions import SHELL, Actor, record
from otphub.services.runtime import Runtime

__all__ = [
    "Movement",
    "Payout",
    "ProviderStats",
    "Record",
    "RemoteStockLine",
    "Statement",
    "StockEntry",
    "pay_out",
    "statement",
    "stats",
]

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Offers of one provider: one per service and country at most.
_ALL_OFFERS = 1_000_000


@dataclass(frozen=True, slots=True)
class Period:
    """[since, until) in Unix seconds; ``None`` is an open end."""

    since: int | None
    until: int | None


def _day(rt: Runtime, raw: str, *, option: str) -> date:
    text = raw.strip()
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise errors.InvalidInput(f"{option}: {raw!r} is not a date (YYYY-MM-DD)")


def _start_of(rt: Runtime, day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=rt.tz).timestamp())


def period(rt: Runtime, *, start: str | None, end: str | None) -> Period:
    """``--from`` and ``--to`` (inclusive) as days in the deployment's time zone."""
    first = None if start is None else _day(rt, start, option="--from")
    last = None if end is None else _day(rt, end, option="--to")
    if first is not None and last is not None and last < first:
        raise errors.InvalidInput("--to must not be before --from")
    return Period(
        since=None if first is None else _start_of(rt, first),
        until=None if last is None else _start_of(rt, last + timedelta(days=1)),
    )


async def _account(conn: Conn, provider_id: int) -> int:
    if not await providers.exists(conn, provider_id):
        raise errors.NotFound(f"no provider with id {provider_id}")
    return await providers.account_of(conn, provider_id)


# ---------------------------------------------------------------- stats


@dataclass(frozen=True, slots=True)
class StockEntry:
    service: str
    country_id: int
    count: int
    price: int | None  # the enabled offer's price; None: remote stock without one
    remote: bool


@dataclass(frozen=True, slots=True)
class ProviderStats:
    provider_id: int
    period: Period
    stock: list[StockEntry]
    record: Record
    payable: int  # what the operator owes the provider now: its earnings less payouts

    @property
    def ended(self) -> int:
        return self.record.finished + self.record.cancelled

    @property
    def success_rate(self) -> float | None:
        """Finished per ended activation (None before the first one ended)."""
        return round(self.record.finished / self.ended, 4) if self.ended else None


async def stats(
    rt: Runtime,
    *,
    provider_id: int,
    start: str | None = None,
    end: str | None = None,
    with_stock: bool = True,
) -> ProviderStats:
    """Stock now (free local numbers per offer, counted as getPrices counts them, and a
    remote provider's last polled stock), and the record over the period. Without
    ``with_stock`` the stock is left empty (the console's provider page reads it from the
    price lists' count instead: ``prices.stock_of_provider``)."""
    wanted = period(rt, start=start, end=end)
    async with rt.db.read() as conn:
        account_id = await _account(conn, provider_id)
        local = (
            [
                StockEntry(line.service, line.country_id, line.count, line.price, remote=False)
                for line in await inventory.stock(conn, provider_id=provider_id)
            ]
            if with_stock
            else []
        )
        polled = await provider_accounts.remote_stock_of(conn, provider_id) if with_stock else []
        # The prices of the remote stock's offers; a local provider has no remote stock,
        # and its thousands of offers need not be read.
        offered = (
            {
                (o.service, o.country_id): o.price
                for o in await reports.offers_list(
                    conn,
                    provider_id=provider_id,
                    service=None,
                    country_id=None,
                    enabled=True,
                    limit=_ALL_OFFERS,
                )
            }
            if polled
            else {}
        )
        remote = [
            StockEntry(
                line.service,
                line.country_id,
                line.count,
                offered.get((line.service, line.country_id)),
                remote=True,
            )
            for line in polled
        ]
        found = await provider_accounts.record(
            conn,
            is_sqlite=rt.db.is_sqlite,
            provider_id=provider_id,
            account_id=account_id,
            since=wanted.since,
            until=wanted.until,
        )
        payable = await providers.payable(conn, provider_id)
    assert payable is not None
    stock = sorted(local + remote, key=lambda e: (e.service, e.country_id, e.remote))
    return ProviderStats(provider_id, wanted, stock, found, payable)


# ---------------------------------------------------------------- payouts


@dataclass(frozen=True, slots=True)
class Payout:
    provider_id: int
    journal_id: int
    amount: int
    payable: int  # what the provider is owed after it
    note: str | None
    created_at: int


async def pay_out(
    rt: Runtime, *, provider_id: int, amount: int, note: str | None, by: Actor = SHELL
) -> Payout:
    """Record that the operator paid the provider ``amount``: a journal transfer from its
    payable to the outside. Never more than it is owed (checked by the statement that
    posts it, so two payouts at once cannot both take the last of it)."""
    if amount <= 0:
        raise errors.InvalidAmount("a payout must be more than zero")
    why = None if note is None else clean_reason(note)
    async with rt.db.write() as conn:
        now = rt.clock.now()
        account_id = await _account(conn, provider_id)
        journal_id = await ledger.pay_out(
            conn, system=rt.accounts(), account_id=account_id, amount=amount, note=why, now=now
        )
        payable = await providers.payable(conn, provider_id)
        assert payable is not None
        if journal_id is None:
            raise errors.InvalidAmount(
                f"provider {provider_id} is owed {rt.money.format(payable)}; a payout of "
                f"{rt.money.format(amount)} would be more than that"
            )
        await record(
            rt, conn, by, "provider.payout", f"provider {provider_id}", amount=amount, note=why
        )
    return Payout(provider_id, journal_id, amount, payable, why, now)


# ---------------------------------------------------------------- statement


@dataclass(frozen=True, slots=True)
class StatementLine:
    movement: Movement
    balance: int  # the payable right after this movement


@dataclass(frozen=True, slots=True)
class Statement:
    provider_id: int
    period: Period
    opening: int  # the payable at the start of the period
    lines: list[StatementLine]

    @property
    def closing(self) -> int:
        """The payable at the end of the period (now, without --to)."""
        return self.lines[-1].balance if self.lines else self.opening


async def statement(
    rt: Runtime, *, provider_id: int, start: str | None = None, end: str | None = None
) -> Statement:
    """Every movement of the provider's payable in the period, in time order, each with
    the balance after it, starting from the balance before the period. One read
    transaction, so the lines and the opening balance agree with each other."""
    wanted = period(rt, start=start, end=end)
    async with rt.db.read() as conn:
        await db_audit.snapshot(conn, is_sqlite=rt.db.is_sqlite)
        account_id = await _account(conn, provider_id)
        opening = (
            0
            if wanted.since is None
            else await provider_accounts.balance_before(
                conn, account_id=account_id, moment=wanted.since
            )
        )
        moves = await provider_accounts.movements(
            conn, account_id=account_id, since=wanted.since, until=wanted.until
        )
    lines: list[StatementLine] = []
    balance = opening
    for move in moves:
        balance += move.amount
        lines.append(StatementLine(move, balance))
    return Statement(provider_id, wanted, opening, lines)
