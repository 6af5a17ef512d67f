"""What is for sale, at what price: getPrices, getPricesV2, getPricesV3."""

from __future__ import annotations

from collections.abc import Sequence

from otphub.db import inventory
from otphub.db.inventory import StockLine
from otphub.domain import errors
from otphub.domain.numbers import parse_whole
from otphub.services.runtime import Runtime


def country_id(rt: Runtime, raw: str | None) -> int | None:
    """A ``country`` filter: ``None`` when absent, ``BAD_COUNTRY`` when unknown."""
    if raw is None:
        return None
    value = parse_whole(raw)
    if value is None or value not in rt.catalog.countries:
        raise errors.BadCountry()
    return value


async def stock(
    rt: Runtime,
    *,
    service: str | None,
    country: str | None,
    wanted: inventory.NumberFilter = inventory.ANY_NUMBER,
) -> Sequence[StockLine]:
    if service is not None and service not in rt.catalog.services:
        raise errors.BadService()
    wanted_country = country_id(rt, country)
    async with rt.db.read() as conn:
        return await inventory.stock(
            conn, service=service, country_id=wanted_country, wanted=wanted
        )


JsonTree = dict[str, dict[str, dict[str, object]]]


def prices_v1(rt: Runtime, lines: Sequence[StockLine]) -> JsonTree:
    """``{"0": {"tg": {"cost": 0.5, "count": 120, "physicalCount": 120}}}``: the lowest price
    with stock, and the free numbers at any price."""
    cheapest: dict[tuple[int, str], int] = {}
    free: dict[tuple[int, str], int] = {}
    for line in lines:
        pair = (line.country_id, line.service)
        cheapest[pair] = min(cheapest.get(pair, line.price), line.price)
        free[pair] = free.get(pair, 0) + line.count
    tree: JsonTree = {}
    for (country_id, service), price in cheapest.items():
        count = free[(country_id, service)]
        tree.setdefault(str(country_id), {})[service] = {
            "cost": rt.money.json_number(price),
            "count": count,
            "physicalCount": count,
        }
    return tree


def prices_v2(rt: Runtime, lines: Sequence[StockLine]) -> JsonTree:
    """``{"0": {"tg": {"0.50": 80, "0.65": 40}}}``: free numbers per price level."""
    tree: JsonTree = {}
    for line in lines:
        levels = tree.setdefault(str(line.country_id), {}).setdefault(line.service, {})
        key = rt.money.format(line.price)
        previous = levels.get(key, 0)
        assert isinstance(previous, int)
        levels[key] = previous + line.count
    return tree


def prices_v3(rt: Runtime, lines: Sequence[StockLine]) -> JsonTree:
    """``{"0": {"tg": {"3": {"count": 80, "price": 0.5, "provider_id": 3}}}}``."""
    tree: JsonTree = {}
    for line in lines:
        per_provider = tree.setdefault(str(line.country_id), {}).setdefault(line.service, {})
        per_provider[str(line.provider_id)] = {
            "count": line.count,
            "price": rt.money.json_number(line.price),
            "provider_id": line.provider_id,
        }
    return tree
