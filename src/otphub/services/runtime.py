"""What every use case needs: the database, settings, the clock, and cached reference data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from otphub.clock import Clock, SystemClock
from otphub.config import Settings
from otphub.db import ledger, migrate
from otphub.db.engine import Database, open_database
from otphub.domain.money import Currency
from otphub.services.catalog import Catalog, load_catalog, read_catalog


@dataclass
class Runtime:
    db: Database
    settings: Settings
    clock: Clock
    secret: bytes
    catalog: Catalog = field(default_factory=Catalog)
    system: ledger.SystemAccounts | None = None
    # Per-process caches of use cases (the stock counts), by name.
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def money(self) -> Currency:
        return self.settings.money

    @property
    def tz(self) -> tzinfo:
        return UTC if self.settings.time_zone == "UTC" else ZoneInfo(self.settings.time_zone)

    def timestamp(self, unix: int) -> str:
        """``YYYY-MM-DD HH:MM:SS`` in the deployment's time zone, as the protocol writes it."""
        return datetime.fromtimestamp(unix, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def accounts(self) -> ledger.SystemAccounts:
        assert self.system is not None, "Runtime.start() was not awaited"
        return self.system

    async def start(self, *, migrate_schema: bool = True) -> None:
        """Bring the schema to head, load the catalog, cache what never changes."""
        if migrate_schema:
            await migrate.upgrade(self.db)
            async with self.db.write() as conn:
                await load_catalog(conn, is_sqlite=self.db.is_sqlite)
                await ledger.ensure_system_accounts(conn)
        async with self.db.read() as conn:
            self.catalog = await read_catalog(conn)
            self.system = await ledger.system_accounts(conn)

    async def close(self) -> None:
        await self.db.dispose()


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    return Runtime(
        db=db, settings=settings, clock=clock or SystemClock(), secret=settings.secret_bytes()
    )
