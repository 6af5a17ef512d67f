"""The statements behind ``/metrics``' gauges: what is live now, read through indexes.

Every read here is bounded by what is live (activations, their holds, free numbers), never
by the history. Open holds used to be found with ``NOT IN`` over every resolution in the
journal, which grows with every purchase ever made; they are now the holds of live
activations that have no resolution, found through the partial index of live activations,
the journal's index by activation and the unique index of resolutions. A hold outside a
live activation can only be a broken ledger, and ``otphub audit`` reports that ("hold
resolution does not match the activation state").

States, kinds and booleans are written into the SQL (the statements take no parameters),
so that both databases use their partial indexes (a bound state is not known to match an
index's condition).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, false, func, literal_column, select, true

from otphub.db.activations import IS_LIVE
from otphub.db.engine import Conn
from otphub.db.schema import activations, journal, numbers


@dataclass(frozen=True, slots=True)
class Gauges:
    open_holds: int
    open_holds_amount: int  # minor units
    live_activations: int
    oldest_deadline: int | None  # of the live activations; None when there are none
    free_numbers: int


_LIVE = select(func.count(), func.min(activations.c.expires_at)).where(IS_LIVE)

_hold = journal.alias("hold")
_resolution = journal.alias("resolution")
# The holds of the live activations, looked up by activation in the journal's index: as a
# plain join, SQLite (which keeps no statistics here) chose to read every hold of the
# journal and look each one's activation up; as a subquery per activation, PostgreSQL ran
# it once for the count and again for the sum.
_OPEN_HOLDS = select(func.count(), func.sum(_hold.c.amount)).where(
    _hold.c.activation_id.in_(select(activations.c.id).where(IS_LIVE)),
    _hold.c.kind == literal_column("'hold'"),
    ~exists().where(_resolution.c.resolves_id == _hold.c.id),
)

# Counted on the claim's partial index (online and free numbers only).
_FREE_NUMBERS = select(func.count()).where(numbers.c.online == true(), numbers.c.in_use == false())


async def read(conn: Conn) -> Gauges:
    live, oldest_deadline = (await conn.execute(_LIVE)).one()
    open_holds, open_amount = (await conn.execute(_OPEN_HOLDS)).one()
    free = (await conn.execute(_FREE_NUMBERS)).scalar_one()
    return Gauges(
        open_holds=int(open_holds),
        open_holds_amount=int(open_amount or 0),  # SUM of no rows is NULL
        live_activations=int(live),
        oldest_deadline=None if oldest_deadline is None else int(oldest_deadline),
        free_numbers=int(free),
    )
