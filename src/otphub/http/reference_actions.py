"""Customer-API actions about what is for sale: prices, stock, countries, services,
operators. Read-only; they never touch a customer's activations or money."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.responses import Response

from otphub.domain import dialects, errors
from otphub.domain.stock import NumberFilter, StockLine
from otphub.http.answers import JSON, dumps, json_answer
from otphub.http.params import Action, Params
from otphub.services import inventory, prices
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime


def _shaped(shape: Callable[[Runtime, Sequence[StockLine]], prices.JsonTree]) -> Action:
    async def action(rt: Runtime, _customer: Customer, params: Params) -> Response:
        body = await prices.answer(
            rt,
            shape.__name__,
            service=params.get("service"),
            country=params.get("country"),
            render=lambda lines: dumps(shape(rt, lines)),
        )
        return Response(body, media_type=JSON)

    return action


get_prices = _shaped(prices.prices_v1)
get_prices_v2 = _shaped(prices.prices_v2)
get_prices_v3 = _shaped(prices.prices_v3)


def _operator_filter(raw: str | None) -> NumberFilter:
    if raw is None or raw.strip().lower() == "any":
        return NumberFilter()
    return NumberFilter(operators=tuple(p.strip().lower() for p in raw.split(",") if p.strip()))


async def get_numbers_status(rt: Runtime, _customer: Customer, params: Params) -> Response:
    """``{"tg_0": "120"}``: free numbers per service in one country (default 0)."""
    country_id = prices.country_id(rt, params.get("country")) or 0
    lines = await prices.stock(
        rt, service=None, country=str(country_id), wanted=_operator_filter(params.get("operator"))
    )
    free: dict[str, int] = {}
    for line in lines:
        free[line.service] = free.get(line.service, 0) + line.count
    return json_answer({f"{service}_0": str(count) for service, count in free.items()})


async def get_top_countries_by_service(
    rt: Runtime, _customer: Customer, params: Params
) -> Response:
    service = params.get("service")
    if service is None:
        raise errors.BadService()
    lines = await prices.stock(rt, service=service, country=None)
    per_country: dict[int, tuple[int, int]] = {}  # country -> (free, cheapest)
    for line in lines:
        free, cheapest = per_country.get(line.country_id, (0, line.price))
        per_country[line.country_id] = (free + line.count, min(cheapest, line.price))
    ranked = sorted(per_country.items(), key=lambda item: (-item[1][0], item[1][1], item[0]))
    return json_answer(
        {
            str(country_id): {
                "country": country_id,
                "count": free,
                "physicalCount": free,
                "price": rt.money.json_number(cheapest),
                "retail_price": rt.money.json_number(cheapest),
            }
            for country_id, (free, cheapest) in ranked
        }
    )


async def get_countries(rt: Runtime, _customer: Customer, _params: Params) -> Response:
    # The catalog has English names only; the protocol's other languages fall back to it.
    return json_answer(
        {
            str(c.id): {
                "id": c.id,
                "rus": c.name_en,
                "eng": c.name_en,
                "chn": c.name_en,
                "visible": 1,
                "retry": 1,
                "rent": 0,
                "multiService": 0,
            }
            for c in sorted(rt.catalog.countries.values(), key=lambda c: c.id)
        }
    )


async def get_services_list(rt: Runtime, customer: Customer, params: Params) -> Response:
    codes = sorted(rt.catalog.services)
    raw_country = params.get("country")
    if raw_country is not None:
        country_id = prices.country_id(rt, raw_country)
        offered = await inventory.services_offered(rt, country_id=country_id or 0)
        codes = [code for code in codes if code in offered]
    services = [{"code": code, "name": rt.catalog.services[code]} for code in codes]
    if customer.dialect == dialects.HEROSMS:
        return json_answer(services)  # the list alone, at the top level
    return json_answer({"status": "success", "services": services})


async def get_operators(rt: Runtime, _customer: Customer, params: Params) -> Response:
    found = await prices.operators(rt, country=params.get("country"))
    if not found:
        raise errors.OperatorsNotFound()
    return json_answer(
        {"status": "success", "countryOperators": {str(k): v for k, v in found.items()}}
    )
