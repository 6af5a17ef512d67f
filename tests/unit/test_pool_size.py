"""OTPHUB_DATABASE_POOL_SIZE: how many PostgreSQL connections one server process may open."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from otphub.config import Settings
from otphub.db.postgres import PostgresDatabase
from otphub.services.runtime import build_runtime


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, secret="s" * 16, **values)  # type: ignore[call-arg, arg-type]


def test_the_default_is_ten_and_the_runtime_opens_its_pools_with_it() -> None:
    assert Settings.model_fields["database_pool_size"].default == 10
    rt = build_runtime(
        settings(database_url="postgresql://postgres@127.0.0.1:5432/x", database_pool_size=3)
    )
    assert isinstance(rt.db, PostgresDatabase)
    # Transactions: 3 x the size, never more (no overflow); hot reads: the size itself.
    assert rt.db.engine.pool.size() == 9  # type: ignore[attr-defined]
    assert rt.db._pool_size == 3
    asyncio.run(rt.db.dispose())


@pytest.mark.parametrize("bad", [0, -1, 1001])
def test_a_size_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValidationError, match="database_pool_size"):
        settings(database_pool_size=bad)
