"""A customer's wallet as its owner reads it: the journal rows that name the wallet,
newest first (reading only; ``db/ledger.py`` writes every one of them)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from otphub.db.engine import Conn
from otphub.db.schema import accounts, journal


@dataclass(frozen=True, slots=True)
class WalletRow:
    id: int
    kind: str
    amount: int
    # True: the wallet is the row's credit side (money in); False: its debit side.
    credited: bool
    activation_id: int | None
    created_at: int
    note: str | None


_COLUMNS = (
    journal.c.id,
    journal.c.kind,
    journal.c.amount,
    journal.c.activation_id,
    journal.c.created_at,
    journal.c.note,
)


async def of_wallet(conn: Conn, account_id: int, *, limit: int) -> list[WalletRow]:
    """The wallet's latest ``limit`` rows, newest first: one bounded read per side (each
    side has its index), merged here."""
    found: list[WalletRow] = []
    for side, credited in (
        (journal.c.credit_account_id, True),
        (journal.c.debit_account_id, False),
    ):
        rows = await conn.execute(
            select(*_COLUMNS).where(side == account_id).order_by(journal.c.id.desc()).limit(limit)
        )
        found.extend(
            WalletRow(
                id=int(r.id),
                kind=str(r.kind),
                amount=int(r.amount),
                credited=credited,
                activation_id=r.activation_id,
                created_at=int(r.created_at),
                note=r.note,
            )
            for r in rows
        )
    found.sort(key=lambda row: row.id, reverse=True)
    return found[:limit]


async def held(conn: Conn, account_id: int) -> int:
    """The money of the wallet set aside for live activations."""
    found = await conn.execute(select(accounts.c.held).where(accounts.c.id == account_id))
    return int(found.scalar_one())
