"""Versioned migrations (Alembic), applied by ``otphub init`` and at server start.

Several processes may start at once (workers, nodes): on PostgreSQL an advisory lock, on
SQLite the ``BEGIN IMMEDIATE`` write lock, makes them take turns; the later ones find the
schema at head and do nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from otphub.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_ID = 0x07F1_0B  # any constant shared by every OTPHub process


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(db: Database) -> None:
    async with db.write() as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        await conn.run_sync(_upgrade)
