"""SQLite: the standard library's driver, called directly on the event loop.

A SQLite statement is a function call into a file the OS has cached: microseconds, never a
network wait. Handing each one to a thread (aiosqlite) cost ~0.4 ms of hand-offs per
statement, more than the statement itself. What could block is waiting for the write lock,
so that wait is done asynchronously: writers first queue at a gate inside the process (one
writer connection serves them in turn), then ``BEGIN IMMEDIATE`` (the write lock up front,
so a transaction never fails to upgrade halfway) is retried with ``asyncio.sleep`` while
another process holds the lock. WAL mode lets readers run beside the writer. The hot read,
``run``'s statements and BEGIN/COMMIT go straight to the driver (see ``prepared.py``).

SQLite's automatic WAL checkpoint runs inside the COMMIT that crosses 1,000 pages: one
commit in about a hundred took 15 to 20 ms, with the event loop blocked all along. The
server's connections turn it off, and every ``CHECKPOINT_EVERY`` commits a passive
checkpoint runs in a worker thread instead (the driver releases the GIL while SQLite
copies pages), while this process's writers wait their turn and its readers go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    Select,
    create_engine,
    event,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool
from sqlalchemy.util.typing import TupleAny, Unpack

from otphub.db.prepared import HotStatements, Rows

if TYPE_CHECKING:  # the protocols' module imports this one
    from otphub.db.engine import Conn, Row

T = TypeVar("T")
_log = structlog.get_logger("otphub.db")

# How long a writer waits for another process's write lock before giving up.
WRITE_LOCK_TIMEOUT = 30.0
# SQLite's own busy handler blocks the thread: keep it short, and wait asynchronously.
_BUSY_TIMEOUT_MS = 20
# Commits between two background WAL checkpoints (each commit adds ~10 pages).
CHECKPOINT_EVERY = 100


class WriterGate:
    """This process's queue for SQLite's write lock: an asyncio lock that is taken by
    whoever asks while it is free.

    ``asyncio.Lock`` hands a released lock to its first waiter, which holds it from then on
    but runs only when the event loop reaches it, after every other ready request. Under
    load the lock then sat idle for a loop's turn between two writes: once a checkpoint had
    made a few writers wait, the queue never drained, and a purchase waited 70 to 110 ms
    for a lock that was mostly free. A write transaction here never suspends once it has
    the write lock, so letting a newcomer take a free gate costs the waiters nothing: they
    find it free again as soon as they run.
    """

    def __init__(self) -> None:
        self._held = False
        self._released = asyncio.Event()

    async def __aenter__(self) -> None:
        while self._held:
            self._released.clear()
            await self._released.wait()
        self._held = True

    async def __aexit__(self, *_exc: object) -> None:
        self._held = False
        self._released.set()


class SyncConn:
    """A SQLite connection behind the ``Conn`` interface: every call runs at once."""

    def __init__(self, conn: Connection, hot: HotStatements) -> None:
        self._conn = conn
        self._hot = hot
        self._driver: Any = None
        # What runs once this transaction has committed (see engine.after_commit).
        self.after_commit: list[Callable[[], None]] | None = None
        # Whoever listens to SQLAlchemy's statement events (instrumentation, the outage
        # tests) sees every statement: then none goes past SQLAlchemy.
        self._observed = observed(conn)

    def run_prepared(self, statement: Executable, params: dict[str, Any]) -> Rows:
        prepared = None if self._observed else self._hot.prepare(statement, params)
        if prepared is None:
            result = self._conn.execute(statement, params)
            return Rows.of(result)
        if self._driver is None:
            self._driver = self._conn.connection.driver_connection
        cursor = self._driver.execute(*prepared)
        # fetchall first: with RETURNING, the count is known once every row is read.
        rows = cursor.fetchall()
        return Rows(rows, cursor.rowcount)

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Unpack[TupleAny]]:
        return self._conn.execute(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._conn, *args, **kwargs)


def observed(conn: Connection) -> bool:
    """Whether a listener waits for SQLAlchemy's statement events on this connection."""
    dispatch = conn.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


class SQLiteDatabase:
    is_sqlite = True

    def __init__(self, url: str, *, synchronous: str) -> None:
        # max_overflow=-1: a checkout never blocks the event loop's thread waiting for a
        # connection (a blocked loop could never return one).
        self.engine: Engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=-1,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        )
        self._writers: WriterGate | None = None
        self._writer: Connection | None = None  # see write()
        _configure_sqlite(self.engine, synchronous)
        # The hot path's own connection (see one()).
        self._hot: Any = None
        self._hot_driver: Any = None
        self._hot_statements = HotStatements(self.engine.dialect)
        self._commits = 0
        self._checkpointing: asyncio.Future[None] | None = None

    async def one(self, statement: Select[Unpack[TupleAny]], params: dict[str, Any]) -> Row | None:
        # One SELECT in autocommit mode is its own consistent snapshot, and a few
        # microseconds of work for SQLite: call the driver directly.
        sql, values = self._hot_statements.bind(statement, params)
        if self._hot is None:
            self._hot = self.engine.raw_connection()
            self._hot_driver = self._hot.driver_connection  # the pool's proxy costs a call
        # fetchall: the statement runs to its end, so its read snapshot ends here and not
        # whenever the cursor is collected (an open snapshot holds back WAL checkpoints).
        rows = self._hot_driver.execute(sql, values).fetchall()
        row: Row | None = rows[0] if rows else None
        return row

    def _writer_lock(self) -> WriterGate:
        # Created lazily: the gate belongs to the event loop that first writes.
        if self._writers is None:
            self._writers = WriterGate()
        return self._writers

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        async with self._writer_lock():
            # This process writes one transaction at a time (the gate above), always on
            # the same connection: checking one out of the pool for each cost more than
            # a small statement.
            conn = self._writer_connection()
            run_sql = _sql_runner(conn)
            try:
                await _begin_immediate(run_sql)
            except BaseException:
                self._drop_writer()
                raise
            if not conn.in_transaction():
                # SQLAlchemy learns that a transaction is open (it does nothing on the
                # driver), so that code given the connection (Alembic) does not commit it.
                conn.begin()
            sync_conn = SyncConn(conn, self._hot_statements)
            try:
                yield sync_conn
                run_sql("COMMIT")
            except BaseException:
                try:
                    run_sql("ROLLBACK")
                except Exception:
                    self._drop_writer()  # in doubt: never reuse it
                raise
        self._after_commit()
        if sync_conn.after_commit is not None:
            for hook in sync_conn.after_commit:
                hook()

    def _writer_connection(self) -> Connection:
        if self._writer is None:
            self._writer = self.engine.connect()
        return self._writer

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.invalidate()  # closes the driver's connection: its locks go with it
                writer.close()

    def _after_commit(self) -> None:
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return  # the last one is still copying: it will take these pages too
        self._commits = 0
        self._checkpointing = asyncio.ensure_future(self._checkpoint_between_writes())

    async def _checkpoint_between_writes(self) -> None:
        # Between this process's writes, so that the checkpoint can copy every frame: SQLite
        # starts the WAL over only after a complete checkpoint, and one that runs beside a
        # stream of writes may always find new frames behind it. Readers go on meanwhile.
        async with self._writer_lock():
            await asyncio.to_thread(self.checkpoint)

    def checkpoint(self) -> None:
        """Copy the WAL's pages into the database file, without waiting for readers or the
        writer (PASSIVE). Runs in a worker thread; a failure is only logged (the next one
        starts over, and SQLite is consistent either way)."""
        try:
            conn = self.engine.raw_connection()
            try:
                driver = conn.driver_connection
                assert driver is not None
                driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
        except Exception:
            _log.warning("sqlite_checkpoint_failed", exc_info=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        with self.engine.connect() as conn:
            run_sql = _sql_runner(conn)
            run_sql("BEGIN")
            try:
                yield SyncConn(conn, self._hot_statements)
            finally:
                run_sql("ROLLBACK")

    async def read_aside(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """In a worker thread, on a connection of its own: counting the whole stock takes
        SQLite 150 to 300 ms, during which the event loop would serve nothing. The driver
        releases the GIL while SQLite runs, so the loop goes on meanwhile."""

        def in_thread() -> T:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("BEGIN")
                try:
                    # SyncConn never suspends: a private event loop just drives the
                    # coroutine to its end in this thread.
                    return asyncio.run(_awaited(work(SyncConn(conn, self._hot_statements))))
                finally:
                    conn.exec_driver_sql("ROLLBACK")

        return await asyncio.to_thread(in_thread)

    async def dispose(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
            self._checkpointing = None
        if self._hot is not None:
            self._hot.close()
            self._hot = self._hot_driver = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.engine.dispose()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _sql_runner(conn: Connection) -> Callable[[str], object]:
    """How BEGIN, COMMIT and ROLLBACK are sent: straight to the driver (through
    SQLAlchemy each cost 20 us, more than SQLite's own work), unless someone listens to
    SQLAlchemy's statement events (see ``observed``)."""
    if observed(conn):
        return conn.exec_driver_sql
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.execute  # type: ignore[no-any-return]


async def _begin_immediate(run_sql: Callable[[str], object]) -> None:
    deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
    pause = 0.001
    while True:
        try:
            run_sql("BEGIN IMMEDIATE")
            return
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        # Another process writes: wait without blocking this process's other requests.
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: OTPHub emits BEGIN, BEGIN IMMEDIATE, COMMIT and
        # ROLLBACK itself (pysqlite's own transaction handling would defer BEGIN).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # see the module's docstring
        cursor.close()
