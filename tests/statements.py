"""What a deployment asks its database: every statement SQLAlchemy sends, with the thread
that sent it.

A statement listener also turns off the SQLite engine's direct paths (see
``otphub.db.engine.observed``), so that every statement passes through SQLAlchemy and is
seen here. The hot path's single reads (``Database.one``: keys, status polls) go straight
to the driver and are not recorded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from otphub.db.engine import Database, PostgresDatabase, SQLiteDatabase


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
