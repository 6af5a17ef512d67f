"""API v1: the balance, and the offers (what is for sale, at what price, how many)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from otphub.domain.stock import NumberFilter
from otphub.http.api_v1 import models
from otphub.http.api_v1.auth import Me, Rt
from otphub.http.api_v1.refusals import BadParameter, GuardedRoute
from otphub.services import lifecycle, prices

router = APIRouter(route_class=GuardedRoute, tags=["account"])


@router.get("/balance", response_model=models.Balance, summary="The balance available")
async def balance(rt: Rt, me: Me) -> models.Balance:
    # As getBalance: an expired hold is money the customer has again.
    available = await lifecycle.available_balance(rt, customer=me)
    return models.Balance(balance=rt.money.json_number(available), currency=rt.settings.currency)


def id_list(raw: str | None, field: str) -> tuple[int, ...]:
    if raw is None or not raw.strip():
        return ()
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        raise BadParameter(field, "a list of provider ids separated by commas, e.g. 1,2")
    return tuple(int(p) for p in parts)


def operators(raw: str | None) -> tuple[str, ...]:
    names = tuple(p.strip().lower() for p in (raw or "").split(",") if p.strip())
    return () if "any" in names else names


@router.get(
    "/offers",
    response_model=models.Offers,
    summary="Free numbers per service, country and price",
    description="The purchase's filters narrow it down as they narrow a purchase. Sorted by "
    "service, country and price.",
)
async def offers(
    rt: Rt,
    _me: Me,
    service: Annotated[str | None, Query(max_length=16)] = None,
    country: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    operator: Annotated[str | None, Query(max_length=200)] = None,
    max_price: Annotated[Decimal | None, Query(ge=0)] = None,
    provider_ids: Annotated[str | None, Query(max_length=1000, examples=["1,2"])] = None,
    except_provider_ids: Annotated[str | None, Query(max_length=1000)] = None,
) -> models.Offers:
    wanted = id_list(provider_ids, "provider_ids")
    unwanted = id_list(except_provider_ids, "except_provider_ids")
    ceiling = None if max_price is None else rt.money.parse_ceiling(str(max_price))
    lines = await prices.stock(
        rt,
        service=service,
        country=None if country is None else str(country),
        wanted=NumberFilter(operators=operators(operator)),
    )
    free: dict[tuple[str, int, int], int] = {}
    for line in lines:
        if (wanted and line.provider_id not in wanted) or line.provider_id in unwanted:
            continue
        if ceiling is not None and line.price > ceiling:
            continue
        place = (line.service, line.country_id, line.price)
        free[place] = free.get(place, 0) + line.count
    return models.Offers(
        offers=[
            models.Offer(
                service=service_code,
                country=country_id,
                price=rt.money.json_number(price),
                count=count,
            )
            for (service_code, country_id, price), count in sorted(free.items())
            if count > 0
        ]
    )
