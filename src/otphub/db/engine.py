"""Engines per dialect, and the two kinds of transaction every use case opens.

SQLite: WAL mode, and write transactions that take the write lock up front
(``BEGIN IMMEDIATE``), so a transaction never reads, then fails to upgrade its lock
halfway. Inside one process writers also queue on an asyncio lock, which is fairer and
far cheaper than SQLite's sleeping busy handler; across processes busy_timeout applies.

PostgreSQL: READ COMMITTED, with row locks and ``SKIP LOCKED`` in the statements that
need them (see ``inventory.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_WRITE = "otphub_write"


def async_url(url: str) -> str:
    """Accept the plain URLs operators write and pick the asyncio driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite+aiosqlite:///", "postgresql+asyncpg://")):
        return url
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path/file.db "
        "or postgresql://user@host:port/db"
    )


@dataclass
class Database:
    engine: AsyncEngine
    is_sqlite: bool
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that may change data: committed on success, rolled back otherwise."""
        if self.is_sqlite:
            async with self._write_lock, self._begin(write=True) as conn:
                yield conn
        else:
            async with self._begin(write=True) as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (never blocks writers on SQLite in WAL mode)."""
        async with self._begin(write=False) as conn:
            yield conn

    @asynccontextmanager
    async def _begin(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if write:
                await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def open_database(url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 10) -> Database:
    full_url = async_url(url)
    is_sqlite = full_url.startswith("sqlite")
    # hide_parameters: a database error must never carry a bound value (an SMS text, a
    # code, a key hash) into a log line.
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size * 2,
        "hide_parameters": True,
    }
    if is_sqlite:
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(full_url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine, sqlite_synchronous)
    return Database(engine=engine, is_sqlite=is_sqlite)


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own
        # transaction handling would defer it and break BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
