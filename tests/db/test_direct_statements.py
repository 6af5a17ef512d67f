"""``engine.run``: on SQLite, the write paths' statements go straight to the driver.

It must give what ``conn.execute`` gives (rows, counts, the transaction they belong to) on
both databases, and leave to SQLAlchemy every statement where the driver alone would not
do the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite

from otphub.db.engine import HotStatements, open_database, run
from otphub.db.schema import schedules

_INSERT = insert(schedules).returning(schedules.c.name, schedules.c.next_run_at)
_SELECT = select(schedules.c.name, schedules.c.next_run_at).where(
    schedules.c.name == bindparam("name")
)
_MOVE = (
    update(schedules)
    .where(schedules.c.name == bindparam("job"), schedules.c.next_run_at <= bindparam("now"))
    .values(next_run_at=schedules.c.next_run_at + bindparam("every", type_=BigInteger))
)


class Stop(Exception):
    pass


async def exercise(url: str) -> dict[str, Any]:
    db = open_database(url)
    seen: dict[str, Any] = {}
    try:
        async with db.write() as conn:
            inserted = await run(conn, _INSERT, {"name": "a", "next_run_at": 10})
            seen["inserted"] = [tuple(r) for r in inserted.rows]
            seen["inserted_count"] = inserted.rowcount
            found = await run(conn, _SELECT, {"name": "a"})
            seen["found"] = tuple(found.one())
            seen["missing"] = (await run(conn, _SELECT, {"name": "b"})).first()
            seen["missing_scalar"] = (await run(conn, _SELECT, {"name": "b"})).scalar()
            moved = await run(conn, _MOVE, {"job": "a", "now": 10, "every": 60})
            not_due = await run(conn, _MOVE, {"job": "a", "now": 10, "every": 60})
            seen["moved"] = (moved.rowcount, not_due.rowcount)
            # What SQLAlchemy reads in the same transaction: the same state.
            direct = (await conn.execute(_SELECT, {"name": "a"})).one()
            seen["through_sqlalchemy"] = tuple(direct)
        # A failure rolls back what went straight to the driver too.
        with pytest.raises(Stop):
            async with db.write() as conn:
                await run(conn, _INSERT, {"name": "gone", "next_run_at": 1})
                raise Stop()
        async with db.read() as conn:
            seen["after_rollback"] = (await run(conn, _SELECT, {"name": "gone"})).first()
            seen["committed"] = tuple((await run(conn, _SELECT, {"name": "a"})).one())
    finally:
        await db.dispose()
    return seen


def test_run_gives_what_execute_gives(database_url: str) -> None:
    seen = asyncio.run(exercise(database_url))
    assert seen["inserted"] == [("a", 10)]
    assert seen["inserted_count"] == 1
    assert seen["found"] == ("a", 10)
    assert seen["missing"] is None and seen["missing_scalar"] is None
    assert seen["moved"] == (1, 0)
    assert seen["through_sqlalchemy"] == ("a", 70)
    assert seen["after_rollback"] is None
    assert seen["committed"] == ("a", 70)


# ---------------------------------------------------------------- what is left to SQLAlchemy

_metadata = MetaData()
_things = Table(
    "things",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("flag", Boolean, nullable=False),
    Column("made", Integer, default=lambda: 7),  # computed in Python at each insert
)
_DIALECT = sqlite.dialect()


def prepared(statement: Any, params: dict[str, Any]) -> tuple[str, list[Any]] | None:
    return HotStatements(_DIALECT).prepare(statement, params)


def test_plain_statements_are_prepared_once_with_their_parameters_in_order() -> None:
    hot = HotStatements(_DIALECT)
    statement = update(_things).where(_things.c.id == bindparam("wanted")).values(flag=false())
    first = hot.prepare(statement, {"wanted": 3})
    again = hot.prepare(statement, {"wanted": 4})
    assert first == ("UPDATE things SET flag=0 WHERE things.id = ?", [3])
    assert again == ("UPDATE things SET flag=0 WHERE things.id = ?", [4])
    # Literal values in the statement (a LIMIT, and the OFFSET SQLite adds) travel as
    # parameters of their own.
    limited = select(_things.c.id).where(_things.c.name == bindparam("name")).limit(1)
    sql_and_values = prepared(limited, {"name": "x"})
    assert sql_and_values is not None
    assert sql_and_values[0].endswith("LIMIT ? OFFSET ?")
    assert sql_and_values[1] == ["x", 1, 0]


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        # A list expanded into IN at each execution.
        (
            select(_things.c.id).where(_things.c.id.in_(bindparam("ids", expanding=True))),
            {"ids": [1]},
        ),
        # A boolean converted on the way in.
        (update(_things).values(flag=bindparam("flag")), {"flag": True}),
        # A boolean converted on the way out.
        (select(_things.c.flag).where(_things.c.id == bindparam("id")), {"id": 1}),
        # A column default computed in Python at each insert.
        (insert(_things), {"name": "x", "flag": False}),
    ],
    ids=["expanding", "bool-in", "bool-out", "python-default"],
)
def test_statements_the_driver_alone_would_get_wrong_are_left_to_sqlalchemy(
    statement: Any, params: dict[str, Any]
) -> None:
    assert prepared(statement, params) is None


def test_statement_listeners_see_every_statement(database_url: str) -> None:
    """Instrumentation on SQLAlchemy's statement events (and the outage tests) must see the
    statements that otherwise go straight to the driver."""
    seen: list[str] = []

    async def scenario() -> None:
        db = open_database(database_url)
        engine: Any = getattr(db, "engine")  # noqa: B009
        target = getattr(engine, "sync_engine", engine)

        def listener(*args: Any) -> None:
            seen.append(" ".join(str(args[2]).split()))

        event.listen(target, "before_cursor_execute", listener)
        try:
            async with db.write() as conn:
                await run(conn, _INSERT, {"name": "watched", "next_run_at": 5})
                await run(conn, _SELECT, {"name": "watched"})
        finally:
            event.remove(target, "before_cursor_execute", listener)
            await db.dispose()

    asyncio.run(scenario())
    assert any(s.startswith("INSERT INTO schedules") for s in seen), seen
    assert any(s.startswith("SELECT schedules.name") for s in seen), seen


def test_the_prepared_statements_cache_is_bounded() -> None:
    """A client chooses part of a purchase statement's shape (how many phone prefixes it
    excludes): the cache of prepared statements must not grow with them."""
    from otphub.db import engine

    hot = HotStatements(_DIALECT)
    for n in range(engine._MAX_PREPARED + 10):
        statement = select(_things.c.id).where(_things.c.name == bindparam(f"p{n}"))
        assert hot.prepare(statement, {f"p{n}": "x"}) is not None
    assert len(hot._prepared) <= engine._MAX_PREPARED
