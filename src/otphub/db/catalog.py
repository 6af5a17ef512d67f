"""Statements on the catalog: the standard service codes and country ids."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from otphub.db.engine import Conn
from otphub.db.schema import countries, services


async def add_missing(
    conn: Conn,
    *,
    is_sqlite: bool,
    service_rows: Sequence[dict[str, str]],
    country_rows: Sequence[dict[str, object]],
) -> None:
    """Insert the services and countries the database lacks; existing rows are left
    alone (an operator may have renamed them)."""
    dialect_insert = sqlite.insert if is_sqlite else postgresql.insert
    await conn.execute(dialect_insert(services).values(list(service_rows)).on_conflict_do_nothing())
    await conn.execute(
        dialect_insert(countries).values(list(country_rows)).on_conflict_do_nothing()
    )


async def service_names(conn: Conn) -> dict[str, str]:
    """Service code -> name."""
    rows = await conn.execute(select(services.c.code, services.c.name))
    return {str(code): str(name) for code, name in rows}


async def country_rows(conn: Conn) -> list[tuple[int, str, str, str]]:
    """(id, English name, ISO 3166 alpha-2 code, phone prefix) of every country."""
    rows = await conn.execute(
        select(countries.c.id, countries.c.name_en, countries.c.iso2, countries.c.phone_prefix)
    )
    return [(int(i), str(name), str(iso2), str(prefix)) for i, name, iso2, prefix in rows]
