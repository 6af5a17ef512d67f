"""Turns of background jobs: of all the processes asking at once, exactly one runs the job
per period, and a run that fails gives its turn back."""

from __future__ import annotations

import asyncio

import pytest

from otphub.db import schedules
from otphub.db.engine import Database, open_database

PROCESSES = 6
EVERY = 60


async def claim(db: Database, *, now: int, job: str = "delivery_scores") -> bool:
    async with db.write() as conn:
        return await schedules.claim_turn(
            conn, is_sqlite=db.is_sqlite, job=job, now=now, every=EVERY
        )


async def race(url: str, *, now: int) -> list[bool]:
    # Separate engines: separate connections, as separate processes would have.
    databases = [open_database(url) for _ in range(PROCESSES)]
    try:
        return list(await asyncio.gather(*(claim(db, now=now) for db in databases)))
    finally:
        for db in databases:
            await db.dispose()


def test_processes_asking_at_once_get_one_turn_per_period(database_url: str) -> None:
    # The very first turn (the job's row does not exist yet), then one period later.
    first = asyncio.run(race(database_url, now=1_000))
    assert first.count(True) == 1, first
    too_early = asyncio.run(race(database_url, now=1_000 + EVERY - 1))
    assert too_early.count(True) == 0, too_early
    next_period = asyncio.run(race(database_url, now=1_000 + EVERY))
    assert next_period.count(True) == 1, next_period


def test_jobs_have_turns_of_their_own(database_url: str) -> None:
    async def both() -> tuple[bool, bool, bool]:
        db = open_database(database_url)
        try:
            return (
                await claim(db, now=500, job="a"),
                await claim(db, now=500, job="b"),
                await claim(db, now=501, job="a"),
            )
        finally:
            await db.dispose()

    assert asyncio.run(both()) == (True, True, False)


def test_a_run_that_fails_gives_its_turn_back(database_url: str) -> None:
    async def failing_then_again() -> bool:
        db = open_database(database_url)
        try:
            with pytest.raises(RuntimeError):
                async with db.write() as conn:
                    won = await schedules.claim_turn(
                        conn, is_sqlite=db.is_sqlite, job="j", now=100, every=EVERY
                    )
                    assert won
                    raise RuntimeError("the job failed")
            return await claim(db, now=100, job="j")
        finally:
            await db.dispose()

    assert asyncio.run(failing_then_again())
