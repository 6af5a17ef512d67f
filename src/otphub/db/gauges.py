"""The statements behind ``/metrics``' gauges: what is live now, never the history.

Open holds used to be counted with ``NOT IN`` over every resolution in the journal, which
grows with every purchase ever made, at every scrape. They come now from what the ledger
keeps current in the same transactions as the journal: the wallets' ``held`` column (the
sum of each wallet's open holds) and the live activations (each has exactly one hold, open
exactly while it is live). ``otphub audit`` checks both against the journal ("held amount
differs from the open holds", "hold resolution does not match the activation state").

The live activations are counted on their partial index: the state is written into the
SQL (``IS_LIVE``), since a bound state is not known to match the index's condition.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal_column, select

from otphub.db.activations import IS_LIVE
from otphub.db.engine import Conn
from otphub.db.schema import accounts, activations, numbers


@dataclass(frozen=True, slots=True)
class Gauges:
    open_holds: int
    open_holds_amount: int  # minor units
    live_activations: int
    oldest_deadline: int | None  # of the live activations; None when there are none
    free_numbers: int


_LIVE = select(func.count(), func.min(activations.c.expires_at)).where(IS_LIVE)
_HELD = select(func.sum(accounts.c.held)).where(accounts.c.kind == literal_column("'customer'"))
_FREE_NUMBERS = select(func.count()).where(numbers.c.online.is_(True), numbers.c.in_use.is_(False))


async def read(conn: Conn) -> Gauges:
    live, oldest_deadline = (await conn.execute(_LIVE)).one()
    held = (await conn.execute(_HELD)).scalar_one()
    free = (await conn.execute(_FREE_NUMBERS)).scalar_one()
    return Gauges(
        open_holds=int(live),  # one per live activation (see above)
        open_holds_amount=int(held or 0),  # SUM of no rows is NULL
        live_activations=int(live),
        oldest_deadline=None if oldest_deadline is None else int(oldest_deadline),
        free_numbers=int(free),
    )
