"""What every use case needs: the database, settings, the clock, and cached reference data."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from otphub.clock import Clock, SystemClock
from otphub.config import SecretError, Settings, create_secret_file, missing_secret_message
from otphub.db import deployment, ledger, migrate, remote_stock
from otphub.db.engine import Database, open_database
from otphub.domain.money import Currency
from otphub.services.catalog import Catalog, load_catalog, read_catalog


@dataclass
class Runtime:
    db: Database
    settings: Settings
    clock: Clock
    # The server secret; empty until ``start()`` when none exists yet (it then generates
    # one, unless the database already holds keys made with a secret that is lost).
    secret: bytes
    catalog: Catalog = field(default_factory=Catalog)
    system: ledger.SystemAccounts | None = None
    # Per-process caches of use cases (the stock counts), by name.
    extensions: dict[str, Any] = field(default_factory=dict)
    # Whether ``start()`` generated the secret file (``otphub init`` says so).
    secret_created: bool = False
    # Whether any provider is remote (an agent, an upstream): purchases then take the path
    # that can call out (services/remote_purchase.py). Read at start, kept current by the
    # sweeper and by provider add, so that no purchase pays a statement to know it.
    remote_supply: bool = False

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
        if not self.secret:
            await self._generate_secret()
        async with self.db.read() as conn:
            self.catalog = await read_catalog(conn)
            self.system = await ledger.system_accounts(conn)
            self.remote_supply = await remote_stock.any_remote_provider(conn)

    async def _generate_secret(self) -> None:
        """A new secret, only for a database that holds no key yet: keys are stored as
        HMAC(secret, key), so a new secret beside old keys would turn every one of them
        into BAD_KEY (a CLI run from another directory once did exactly that)."""
        path = self.settings.secret_path()
        async with self.db.read() as conn:
            if await deployment.holds_api_keys(conn):
                raise SecretError(
                    f"{missing_secret_message(path)}, and this database holds API keys made "
                    "with a secret: set OTPHUB_SECRET to it, or put its file back there "
                    "(a new secret would make every key BAD_KEY)"
                )
        self.secret = create_secret_file(path)
        self.secret_created = True

    async def close(self) -> None:
        await self.db.dispose()


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    secret = settings.configured_secret() or b""  # refuses an empty or short one first
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private_file(path)
    db = open_database(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.database_pool_size,
    )
    return Runtime(db=db, settings=settings, clock=clock or SystemClock(), secret=secret)


def create_private_file(path: Path) -> None:
    """Create an empty SQLite database file with mode 0600 unless it exists: it holds
    codes and phone numbers. SQLite then opens it as a new database, and gives its
    ``-wal`` and ``-shm`` files the database file's own mode."""
    if path.name == ":memory:":
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
