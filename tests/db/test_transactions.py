"""The two kinds of transaction, ``Database.write()`` and ``Database.read()``, end the same
way on both databases: a write commits on success and rolls back on failure; a read always
rolls back, so whatever a read did by mistake is never kept (PostgreSQL's read once
committed it while SQLite's rolled it back)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, insert, select

from otphub.db.engine import Conn, Database, open_database
from otphub.db.schema import schedules


class Stop(Exception):
    pass


async def _names(db: Database) -> list[str]:
    async with db.read() as conn:
        result = await conn.execute(select(schedules.c.name).order_by(schedules.c.name))
        return [str(name) for name in result.scalars()]


async def _insert(conn: Conn, name: str) -> None:
    await conn.execute(insert(schedules).values(name=name, next_run_at=1))


def test_a_write_inside_a_read_is_not_kept(database_url: str) -> None:
    async def scenario() -> list[str]:
        db = open_database(database_url)
        try:
            async with db.write() as conn:
                await _insert(conn, "kept")
            async with db.read() as conn:
                await _insert(conn, "read")
                await conn.execute(delete(schedules).where(schedules.c.name == "kept"))
            return await _names(db)
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == ["kept"]


def test_a_write_inside_a_read_aside_is_not_kept(database_url: str) -> None:
    async def scenario() -> list[str]:
        db = open_database(database_url)
        try:
            await db.read_aside(lambda conn: _insert(conn, "aside"))
            return await _names(db)
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == []


def test_a_failing_read_rolls_back_and_raises(database_url: str) -> None:
    async def scenario() -> list[str]:
        db = open_database(database_url)
        try:
            with pytest.raises(Stop):
                async with db.read() as conn:
                    await _insert(conn, "read")
                    raise Stop()
            return await _names(db)
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == []


def test_a_write_commits_on_success_and_rolls_back_on_failure(database_url: str) -> None:
    async def scenario() -> list[str]:
        db = open_database(database_url)
        try:
            async with db.write() as conn:
                await _insert(conn, "committed")
            with pytest.raises(Stop):
                async with db.write() as conn:
                    await _insert(conn, "failed")
                    raise Stop()
            return await _names(db)
        finally:
            await db.dispose()

    assert asyncio.run(scenario()) == ["committed"]
