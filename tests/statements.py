"""What a deployment asks its database: every statement SQLAlchemy sends, with the thread
that sent it, and the plans of statements on either database.

A statement listener also turns off the SQLite engine's direct paths (see
``otphub.db.engine.observed``), so that every statement passes through SQLAlchemy and is
seen here. The hot path's single reads (``Database.one``: keys, status polls) go straight
to the driver and are not recorded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from otphub.db.engine import Database, PostgresDatabase, SQLiteDatabase
from tests.support import Hub


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any
    thread: int

    def reads(self, table: str) -> bool:
        return re.search(rf"\b{table}\b", self.sql) is not None


def sync_engine(db: Database) -> Engine:
    if isinstance(db, SQLiteDatabase):
        return db.engine
    assert isinstance(db, PostgresDatabase)
    return db.engine.sync_engine


@contextmanager
def recorded(db: Database) -> Iterator[list[Statement]]:
    """The statements sent while the block runs, in order."""
    engine = sync_engine(db)
    seen: list[Statement] = []

    def before(
        _conn: object,
        _cursor: object,
        statement: str,
        parameters: Any,
        _context: object,
        _executemany: bool,
    ) -> None:
        seen.append(Statement(statement, parameters, threading.get_ident()))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def sqlite_plan(hub: Hub, statement: Statement) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN: one line per step (``SCAN t``, ``SEARCH t USING ...``)."""
    assert isinstance(hub.rt.db, SQLiteDatabase)
    with hub.rt.db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters or ()
        ).all()
    return [str(row[-1]) for row in rows]


def postgres_rows_visited(hub: Hub, statement: Statement, table: str) -> int:
    """Rows of ``table`` that PostgreSQL reads to run ``statement``, planned as it would be
    on a table too large to read whole (``enable_seqscan`` off, which makes a sequential
    scan the last resort, not impossible): the rows each scan returned or filtered out."""
    db = hub.rt.db
    assert isinstance(db, PostgresDatabase)

    async def explain() -> Any:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            result = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql, statement.parameters or ()
            )
            return result.scalar_one()

    found = hub.call(explain())
    plan = json.loads(found) if isinstance(found, str) else found
    return _visited(plan[0]["Plan"], table)


def _visited(node: dict[str, Any], table: str) -> int:
    rows = 0
    if node.get("Relation Name") == table:
        per_loop = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
        rows += int(per_loop * node.get("Actual Loops", 1))
    for child in node.get("Plans", ()):
        rows += _visited(child, table)
    return rows
