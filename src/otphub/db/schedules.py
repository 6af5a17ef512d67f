"""Turns of periodic background jobs, shared by every process through the database.

Every process runs the same background loops (nothing but the database coordinates the
nodes of a fleet). A job that must run once per period, not once per process, first claims
its turn here: one UPDATE moves the job's next run ahead only if it is due, so of several
processes asking at once exactly one gets ``True``.
"""

from __future__ import annotations

from sqlalchemy import bindparam, update

from otphub.db.engine import Conn, insert_or_nothing
from otphub.db.schema import schedules

_CLAIM = (
    update(schedules)
    .where(schedules.c.name == bindparam("job"), schedules.c.next_run_at <= bindparam("now"))
    .values(next_run_at=bindparam("next_run"))
)
# The job's first turn: whoever inserts its row. A concurrent insert waits for the first
# one's transaction and then does nothing.
_FIRST = {
    is_sqlite: statement.values(name=bindparam("job"), next_run_at=bindparam("next_run"))
    for is_sqlite, statement in insert_or_nothing(schedules, conflict_on=["name"]).items()
}


async def claim_turn(conn: Conn, *, is_sqlite: bool, job: str, now: int, every: int) -> bool:
    """``True``: this caller runs ``job`` now, and no process will before ``now + every``.
    Call it inside the transaction that does the job, so that a run that fails gives the
    turn back (its rollback undoes the claim)."""
    params = {"job": job, "now": now, "next_run": now + every}
    if (await conn.execute(_CLAIM, params)).rowcount == 1:
        return True
    return (await conn.execute(_FIRST[is_sqlite], params)).rowcount == 1
