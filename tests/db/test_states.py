"""Activation states are written once, in the enum; every SQL copy is derived from it.

The live schema was built by the migrations, which keep their historical literals: its
CHECK constraints and partial-index predicates must name exactly the states the code
derives from the enum now. A state added to the enum (or taken out of a set) without a
migration fails here, on both databases.
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

from sqlalchemy import CheckConstraint, Index, text

from otphub.db import activations as db_activations
from otphub.db import inventory, keys, schema, states
from otphub.db.engine import open_database
from otphub.domain.activation import CODELESS_STATES, LIVE_STATES, State
from tests import support

_LITERAL = re.compile(r"'([^']*)'")
SOURCE = Path(db_activations.__file__).resolve().parents[1]


def literals(sql: str) -> list[str]:
    """The quoted literals of a SQL text, in order (PostgreSQL rewrites ``IN (...)`` as
    ``= ANY (ARRAY[...])``, SQLite keeps the text as written: both keep the literals)."""
    return _LITERAL.findall(sql)


def declared_state_sql() -> dict[str, str]:
    """Name -> SQL of every CHECK and partial-index predicate of ``activations`` that
    names states, as the code declares them now."""
    found: dict[str, str] = {}
    for constraint in schema.activations.constraints:
        if isinstance(constraint, CheckConstraint):
            found[str(constraint.name)] = str(constraint.sqltext)
    for index in schema.activations.indexes:
        assert isinstance(index, Index)
        where = index.dialect_options["sqlite"]["where"]
        if where is not None:
            assert str(where) == str(index.dialect_options["postgresql"]["where"]), index.name
            found[str(index.name)] = str(where)
    return {name: sql for name, sql in found.items() if "state" in sql}


async def live_state_sql(url: str) -> dict[str, str]:
    """The same, read back from a database the migrations built."""
    db = open_database(url)
    try:
        async with db.read() as conn:
            if db.is_sqlite:
                rows = await conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'activations'")
                )
                found: dict[str, str] = {}
                for name, sql in rows:
                    if name == "activations":  # the CHECKs are inside CREATE TABLE
                        for check, body in re.findall(
                            r"CONSTRAINT (\w+) CHECK \((.*?)\)(?:,|\s*\)\s*$)", sql, re.S
                        ):
                            found[check] = body
                    elif sql is not None and " WHERE " in sql:
                        found[name] = sql.split(" WHERE ", 1)[1]
                return found
            checks = await conn.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'activations'::regclass AND contype = 'c'"
                )
            )
            indexes = await conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes "
                    "WHERE tablename = 'activations' AND indexdef LIKE '% WHERE %'"
                )
            )
            found = {str(name): str(sql) for name, sql in checks}
            found |= {str(name): str(sql).split(" WHERE ", 1)[1] for name, sql in indexes}
            return found
    finally:
        await db.dispose()


def test_the_schema_spells_the_states_of_the_enum() -> None:
    declared = declared_state_sql()
    every = [s.value for s in State]
    live = [s.value for s in State if s in LIVE_STATES]
    assert literals(declared["ck_activations_state"]) == every
    assert literals(declared["ck_activations_code_kept"]) == [
        s.value for s in State if s in CODELESS_STATES
    ]
    for name in (
        "uq_activations_live_number",
        "ix_activations_live_deadline",
        "ix_activations_customer_live",
    ):
        assert literals(declared[name]) == live, name
    assert literals(declared["uq_activations_finished_number_service"]) == ["finished"]


def test_the_live_schema_names_the_states_the_enum_derives(database_url: str) -> None:
    """The migrations' literals equal what the enum derives now: a state added to the enum
    needs a migration of the CHECK and of the partial indexes."""
    declared = declared_state_sql()
    live = asyncio.run(live_state_sql(database_url))
    assert set(declared) <= set(live), sorted(set(declared) - set(live))
    for name, sql in declared.items():
        assert literals(live[name]) == literals(sql), (name, live[name], sql)
    if database_url.startswith("sqlite"):
        # SQLite matches a query to a partial index by the predicate's text: it must be the
        # very text the fast paths repeat.
        for name, sql in declared.items():
            assert " ".join(live[name].split()) == sql, (name, live[name])


def test_the_fast_paths_repeat_the_partial_indexes_predicates() -> None:
    """SQLite uses a partial index only for a query that repeats its predicate."""
    assert str(db_activations.IS_LIVE) == "activations." + states.LIVE
    assert str(db_activations.IS_FINISHED) == "activations." + states.FINISHED
    assert str(db_activations.IS_CANCELLED) == "activations." + states.CANCELLED
    assert tuple(s.value for s in State if s in LIVE_STATES) == db_activations.LIVE


async def query_plans(url: str) -> dict[str, str]:
    """SQLite's plan of the statements that lean on the partial indexes."""
    db = open_database(url)
    engine = getattr(db, "engine")  # noqa: B009
    shape = inventory._Shape.of(inventory.OfferFilter("tg", 0), inventory.ANY_NUMBER)
    statements = {
        "cancels_of_number": inventory._CANCELS_OF_NUMBER,
        "has_overdue": db_activations.HAS_OVERDUE,
        "live_on_number": db_activations._LIVE_ON_NUMBER,
        "count_live": db_activations._COUNT_LIVE,
        "offers": inventory._offers_statement(shape),
        "claim": inventory._claim_statement(shape),
        "polling": keys._CUSTOMER_AND_ACTIVATION,
    }
    plans: dict[str, str] = {}
    try:
        async with db.read() as conn:
            for name, statement in statements.items():
                compiled = statement.compile(dialect=engine.dialect)
                sql = "EXPLAIN QUERY PLAN " + str(compiled)
                params = [None] * len(compiled.positiontup or ())
                rows = await conn.run_sync(
                    lambda sync, sql=sql, params=params: sync.exec_driver_sql(
                        sql, tuple(params)
                    ).all()
                )
                plans[name] = " | ".join(str(row[-1]) for row in rows)
    finally:
        await db.dispose()
    return plans


def test_sqlite_uses_the_partial_indexes(sqlite_template: Path, tmp_path: Path) -> None:
    """SQLite only: it matches a query to a partial index by the predicate's text, where
    PostgreSQL proves the implication from any equivalent predicate."""
    database_url = support.sqlite_copy(sqlite_template, tmp_path)
    plans = asyncio.run(query_plans(database_url))
    assert "ix_activations_customer_live" in plans["has_overdue"], plans["has_overdue"]
    assert "ix_activations_customer_live" in plans["count_live"], plans["count_live"]
    assert "uq_activations_live_number" in plans["live_on_number"], plans["live_on_number"]
    for name in ("offers", "claim"):
        assert "uq_activations_finished_number_service" in plans[name], plans[name]
        # The cancelled-numbers rule: the buyer's cancels, and the retired pairs by key.
        assert "ix_activations_cancelled_number" in plans[name], plans[name]
        assert "sqlite_autoindex_retired_numbers_1" in plans[name], plans[name]
    assert "ix_activations_cancelled_number" in plans["cancels_of_number"], plans[
        "cancels_of_number"
    ]


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions (prose may
    quote a state)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_no_state_name_is_written_into_sql_by_hand() -> None:
    """Outside the enum (and the migrations, which are history), no string of the package
    quotes a state name as SQL does: each such copy must come from db/states.py."""
    quoted = re.compile("'(" + "|".join(s.value for s in State) + ")'")
    offenders: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        if relative == "domain/activation.py" or relative.startswith("db/migrations/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prose = docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in prose
                and quoted.search(node.value)
            ):
                offenders.append(f"{relative}:{node.lineno}: {node.value.strip()[:60]}")
    assert offenders == []
