"""The auditor: recompute every balance from the journal and check that money is conserved.

Nothing here trusts a stored balance. It derives each account from the append-only
journal and compares, checks that every hold was resolved at most once and exactly as
its activation ended, and that debits equal credits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from otphub.db import audit as db_audit
from otphub.db.engine import Conn
from otphub.services.operator_actions import SHELL, Actor
from otphub.services.runtime import Runtime

# Rows shown per broken rule; the rest are counted.
_SHOWN = 20


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.problems


async def _audit(conn: Conn) -> AuditReport:
    report = AuditReport()
    for rule, rows in (await db_audit.broken_rules(conn)).items():
        for row in rows[:_SHOWN]:
            report.problems.append(f"{rule}: {row}")
        if len(rows) > _SHOWN:
            report.problems.append(f"{rule}: ... and {len(rows) - _SHOWN} more")
    report.totals = await db_audit.totals(conn)
    t = report.totals
    # Conservation: every posted row moved money from one account to another, so all
    # accounts together hold exactly nothing.
    if t["wallets"] + t["payables"] + t["revenue"] + t["external"] != 0:
        report.problems.append(
            "money not conserved: wallets + payables + revenue + external = "
            f"{t['wallets'] + t['payables'] + t['revenue'] + t['external']} (must be 0)"
        )
    if t["held"] != t["pending"]:
        report.problems.append(
            f"pending holds not conserved: wallets hold {t['held']}, journal has {t['pending']}"
        )
    return report


async def audit(rt: Runtime) -> AuditReport:
    # One read transaction: on both engines it sees one consistent snapshot.
    async with rt.db.read() as conn:
        await db_audit.snapshot(conn, is_sqlite=rt.db.is_sqlite)
        return await _audit(conn)


@dataclass(frozen=True, slots=True)
class AuditRun:
    """A recorded run: what it found, when, by whom, and how long it took."""

    report: AuditReport
    at: int
    actor: str
    took_ms: int


async def run_and_record(rt: Runtime, *, by: Actor = SHELL) -> AuditRun:
    """Run the audit (its own read snapshot), then record what it found."""
    started = time.perf_counter()
    report = await audit(rt)
    took_ms = round((time.perf_counter() - started) * 1000)
    now = rt.clock.now()
    async with rt.db.write() as conn:
        await db_audit.record_run(
            conn,
            at=now,
            actor=by.name,
            took_ms=took_ms,
            problems=report.problems,
            totals=report.totals,
        )
    return AuditRun(report, now, by.name, took_ms)


async def last_run(rt: Runtime) -> AuditRun | None:
    async with rt.db.read() as conn:
        row = await db_audit.last_run(conn)
    if row is None:
        return None
    return AuditRun(AuditReport(row.problems, row.totals), row.at, row.actor, row.took_ms)
