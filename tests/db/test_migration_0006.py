"""Migration 0006 goes down and up again on an empty journal, and refuses to go down while
the journal holds referral rows (the older CHECK does not know them), on SQLite and
PostgreSQL. Each test migrates a database of its own: a downgrade must never touch the
database other tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from otphub.db.engine import open_database
from otphub.db.migrate import alembic_config
from otphub.db.schema import metadata
from tests import support


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'own.db'}"
        asyncio.run(support.migrate(url))
        yield url
        return
    if not support.pg_reachable():
        pytest.skip("PostgreSQL is not reachable")
    url = support.create_pg_database()
    try:
        asyncio.run(support.migrate(url))
        yield url
    finally:
        support.drop_pg_database(url)


# Later migrations come after 0006: going "up again" ends at the newest.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _version(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def run(url: str, work: Any) -> Any:
    """``work(connection)`` in one write transaction of the database at ``url``."""

    async def go() -> Any:
        db = open_database(url, pool_size=1)
        try:
            async with db.write() as conn:
                return await conn.run_sync(work)
        finally:
            await db.dispose()

    return asyncio.run(go())


def to(revision: str, *, down: bool) -> Any:
    def work(connection: Connection) -> None:
        config = alembic_config(connection)
        if down:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    return work


def test_down_and_up_again_on_an_empty_journal(own_database: str) -> None:
    run(own_database, to("0005", down=True))
    assert run(own_database, _version) == "0005"
    run(own_database, to("head", down=False))
    assert run(own_database, _version) == HEAD
    assert run(own_database, _differences) == []


def test_down_is_refused_while_referral_rows_exist(own_database: str) -> None:
    def referral(connection: Connection) -> None:
        for kind in ("customer", "customer"):
            connection.execute(
                text("INSERT INTO accounts (kind, balance, held) VALUES (:k, 0, 0)"), {"k": kind}
            )
        ids = [r[0] for r in connection.execute(text("SELECT id FROM accounts ORDER BY id"))]
        connection.execute(
            text(
                "INSERT INTO journal (kind, debit_account_id, credit_account_id, amount, "
                "created_at) VALUES ('referral', :d, :c, 1, 0)"
            ),
            {"d": ids[-2], "c": ids[-1]},
        )

    run(own_database, referral)
    with pytest.raises(Exception) as refused:
        run(own_database, to("0005", down=True))
    assert "referral" in str(refused.value) or "ck_journal_kind" in str(refused.value)
    assert run(own_database, _version) == HEAD
    assert run(own_database, _differences) == []
