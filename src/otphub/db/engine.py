"""Engines per dialect, and the two kinds of transaction every use case opens.

Use cases see one interface, ``Conn``: ``await conn.execute(statement)``, or
``await run(conn, statement, params)`` for the statements of the busy write paths (rows
read by position). Behind it, one module per concern:

- ``postgres.py``: SQLAlchemy's asyncio engine on asyncpg, READ COMMITTED.
- ``sqlite.py``: the standard library's driver on the event loop, a write gate, WAL
  checkpoints in a worker thread.
- ``prepared.py``: statements compiled once and sent straight to the driver, where that
  gives exactly what SQLAlchemy would.

This module is the one the rest of ``otphub.db`` imports from: the protocols,
``open_database`` and ``run``, and the names of the modules above.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from sqlalchemy import CursorResult, Executable, Insert, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.util.typing import TupleAny, Unpack

from otphub.db.postgres import AFTER_COMMIT, PostgresDatabase
from otphub.db.prepared import _MAX_PREPARED as _MAX_PREPARED
from otphub.db.prepared import HotStatements, Rows
from otphub.db.sqlite import (
    CHECKPOINT_EVERY,
    WRITE_LOCK_TIMEOUT,
    SQLiteDatabase,
    SyncConn,
    WriterGate,
    observed,
)

__all__ = [
    "CHECKPOINT_EVERY",
    "WRITE_LOCK_TIMEOUT",
    "Conn",
    "Database",
    "HotStatements",
    "PostgresDatabase",
    "Row",
    "Rows",
    "SQLiteDatabase",
    "SyncConn",
    "WriterGate",
    "after_commit",
    "async_url",
    "insert_or_nothing",
    "observed",
    "open_database",
    "run",
]

T = TypeVar("T")


class Conn(Protocol):
    """A connection inside a transaction, on either engine."""

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Unpack[TupleAny]]: ...

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


Row = Sequence[Any]


class Database(Protocol):
    is_sqlite: bool

    async def one(self, statement: Select[Unpack[TupleAny]], params: dict[str, Any]) -> Row | None:
        """The first row of one read-only statement, outside any transaction: the hot path
        (authentication, status polls). The row is read by position."""

    def write(self) -> AbstractAsyncContextManager[Conn]:
        """``async with db.write() as conn``: committed on success, rolled back otherwise."""

    def read(self) -> AbstractAsyncContextManager[Conn]:
        """``async with db.read() as conn``: a transaction for reading, always rolled back
        (on both databases), so that nothing written in it by mistake is kept."""

    async def read_aside(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """``work`` in a read-only transaction that does not hold up other requests: for
        long reads (the stock count)."""

    async def dispose(self) -> None: ...


def after_commit(conn: Conn, hook: Callable[[], None]) -> None:
    """Run ``hook`` right after the write transaction of ``conn`` commits (in this task,
    before ``db.write()`` returns); never if it rolls back."""
    if isinstance(conn, SyncConn):
        if conn.after_commit is None:
            conn.after_commit = []
        conn.after_commit.append(hook)
        return
    info: dict[str, Any] = conn.info  # type: ignore[attr-defined]
    info.setdefault(AFTER_COMMIT, []).append(hook)


def insert_or_nothing(table: Table, *, conflict_on: list[str]) -> dict[bool, Insert]:
    """``INSERT ... ON CONFLICT (conflict_on) DO NOTHING`` for each dialect, keyed by
    ``is_sqlite``: the two dialects spell it with their own ``insert``."""
    return {
        is_sqlite: (sqlite.insert if is_sqlite else postgresql.insert)(
            table
        ).on_conflict_do_nothing(index_elements=conflict_on)
        for is_sqlite in (True, False)
    }


def async_url(url: str) -> str:
    """Accept the plain URLs operators write and pick the asyncio driver for PostgreSQL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite:///", "postgresql+asyncpg://")):
        return url
    if url.startswith("sqlite+aiosqlite:///"):
        return "sqlite:///" + url.removeprefix("sqlite+aiosqlite:///")
    # Only the scheme: the rest of a URL may carry a password.
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not (scheme.isascii() and scheme.replace("+", "").isalnum() and len(scheme) <= 30):
        scheme = "(unreadable)"
    raise ValueError(
        f"unsupported database URL (scheme {scheme!r}): use sqlite:///path/file.db "
        "or postgresql://user@host:port/db"
    )


def open_database(url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 10) -> Database:
    full_url = async_url(url)
    if full_url.startswith("sqlite"):
        return SQLiteDatabase(full_url, synchronous=sqlite_synchronous)
    return PostgresDatabase(full_url, pool_size=pool_size)


async def run(conn: Conn, statement: Executable, params: dict[str, Any]) -> Rows:
    """One statement of a write path that runs on every purchase, cancel or SMS: on SQLite
    straight through the driver when ``HotStatements.prepare`` allows it (SQLAlchemy's
    bookkeeping cost 20 to 30 us per statement, as much as SQLite's work), else, and on
    PostgreSQL, through ``conn.execute``."""
    if isinstance(conn, SyncConn):
        return conn.run_prepared(statement, params)
    result = await conn.execute(statement, params)
    return Rows.of(result)
