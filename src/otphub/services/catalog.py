"""The catalog: standard service codes and country ids, offers and numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources

from otphub.db import catalog as db_catalog
from otphub.db.engine import Conn


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
    await db_catalog.add_missing(
        conn,
        is_sqlite=is_sqlite,
        service_rows=packaged_services(),
        country_rows=packaged_countries(),
    )


async def read_catalog(conn: Conn) -> Catalog:
    catalog = Catalog(services=await db_catalog.service_names(conn))
    for country_id, name_en, iso2, phone_prefix in await db_catalog.country_rows(conn):
        catalog.countries[country_id] = Country(country_id, name_en, iso2, phone_prefix)
    return catalog
