"""The catalog: standard service codes and country ids, offers and numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from otphub.db.engine import Conn
from otphub.db.schema import countries, services


@dataclass(frozen=True, slots=True)
class Country:
    id: int
    name_en: str
    iso2: str
    phone_prefix: str


@dataclass
class Catalog:
    """Services and countries, read once at start: every request validates against them."""

    services: dict[str, str] = field(default_factory=dict)  # code -> name
    countries: dict[int, Country] = field(default_factory=dict)


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("otphub.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def packaged_services() -> list[dict[str, str]]:
    return [{"code": r["code"], "name": r["name"]} for r in _rows("services.csv")]


def packaged_countries() -> list[dict[str, object]]:
    return [
        {
            "id": int(r["id"]),
            "name_en": r["name_en"],
            "iso2": r["iso2"],
            "phone_prefix": r["phone_prefix"],
        }
        for r in _rows("countries.csv")
    ]


async def load_catalog(conn: Conn, *, is_sqlite: bool) -> None:
    """Add the standard services and countries that the database lacks. Existing rows are
    left alone: an operator may have renamed them."""
    dialect_insert = sqlite.insert if is_sqlite else postgresql.insert
    await conn.execute(
        dialect_insert(services).values(packaged_services()).on_conflict_do_nothing()
    )
    await conn.execute(
        dialect_insert(countries).values(packaged_countries()).on_conflict_do_nothing()
    )


async def read_catalog(conn: Conn) -> Catalog:
    catalog = Catalog()
    for code, name in await conn.execute(select(services.c.code, services.c.name)):
        catalog.services[code] = name
    for row in await conn.execute(select(countries)):
        catalog.countries[row.id] = Country(row.id, row.name_en, row.iso2, row.phone_prefix)
    return catalog
