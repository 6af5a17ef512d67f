"""PostgreSQL: SQLAlchemy's asyncio engine on asyncpg; READ COMMITTED, with row locks and
``SKIP LOCKED`` in the statements that need them (see ``inventory.py``). The hot read
(``one``) goes through asyncpg's own pool and prepared-statement cache instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.typing import TupleAny, Unpack

from otphub.db.prepared import HotStatements

if TYPE_CHECKING:  # the protocols' module imports this one
    from otphub.db.engine import Conn, Row

T = TypeVar("T")

# The key, in a connection's ``info``, of what runs once its transaction has committed.
AFTER_COMMIT = "otphub_after_commit"


class PostgresDatabase:
    is_sqlite = False

    def __init__(self, url: str, *, pool_size: int) -> None:
        # hide_parameters: a database error must never carry a bound value (an SMS text,
        # a code, a key hash) into a log line.
        self.engine: AsyncEngine = create_async_engine(
            url,
            # Every connection stays open once made: with overflow connections (10 + 20),
            # 32 busy clients opened and closed 64 PostgreSQL backends in 8 seconds, each
            # costing the server a process start. Same ceiling as before: 3 x pool_size.
            pool_size=pool_size * 3,
            max_overflow=0,
            pool_pre_ping=True,
            hide_parameters=True,
        )

        self._dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._hot: Any = None  # an asyncpg pool, opened on first use
        self._hot_opening: asyncio.Future[Any] | None = None
        self._hot_statements = HotStatements(self.engine.dialect)
        self._pool_size = pool_size

    async def one(self, statement: Select[Unpack[TupleAny]], params: dict[str, Any]) -> Row | None:
        # One round trip: asyncpg's own pool (no ping, no reset: a single SELECT leaves no
        # state behind) and its prepared-statement cache. Through SQLAlchemy the same read
        # took five round trips (ping, begin, prepare, execute, rollback).
        if self._hot is None:
            if self._hot_opening is None:  # concurrent first callers share one pool
                self._hot_opening = asyncio.ensure_future(
                    asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=self._pool_size, reset=_no_reset
                    )
                )
            try:
                self._hot = await asyncio.shield(self._hot_opening)
            except BaseException:
                self._hot_opening = None  # the server is down: try again next time
                raise
        sql, values = self._hot_statements.bind(statement, params)
        try:
            row: Row | None = await self._hot.fetchrow(sql, *values)
        except _CONNECTION_LOST:
            # The server went away and came back (a restart, a failover): every idle
            # connection is dead. Replace them all and try once more.
            await self._hot.expire_connections()
            row = await self._hot.fetchrow(sql, *values)
        return row

    @property
    def dsn(self) -> str:
        """The plain ``postgresql://`` URL, for a connection of asyncpg's own (LISTEN)."""
        return self._dsn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        hooks: list[Callable[[], None]] | None = None
        async with self.engine.begin() as conn:
            try:
                yield conn
            finally:
                # The connection's info outlives the checkout: take what this transaction
                # left there whatever happens, and run it only once it has committed.
                hooks = conn.info.pop(AFTER_COMMIT, None)
        if hooks is not None:
            for hook in hooks:
                hook()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        # Rolled back, never committed, as on SQLite: whatever a read did by mistake is not
        # kept. A rollback costs the same round trip as a commit.
        async with self.engine.connect() as conn:
            await conn.begin()
            try:
                yield conn
            finally:
                await conn.rollback()

    async def read_aside(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        # The server does the work; this process only waits for it.
        async with self.read() as conn:
            return await work(conn)

    async def dispose(self) -> None:
        if self._hot is not None:
            await self._hot.close()
        self._hot = self._hot_opening = None
        await self.engine.dispose()


_CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.ConnectionDoesNotExistError,
)


async def _no_reset(_connection: Any) -> None:
    """The hot pool's connections only ever ran one SELECT: nothing to reset."""
