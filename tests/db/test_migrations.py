"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from otphub.db.schema import metadata
from tests.support import Hub


def test_migrations_match_the_declared_schema(hub: Hub) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async def compare() -> list[Any]:
        async with hub.rt.db.read() as conn:
            return await conn.run_sync(differences)

    assert hub.call(compare()) == []
