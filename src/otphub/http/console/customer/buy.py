"""``/buy``: pick a service and a country, see the prices with their stock (refreshed
without a reload: ``/buy/offers`` and ``/buy/operators`` answer HTML fragments), buy.
The purchase is ``purchase.buy_number``, the API's own, through API v1's idempotent
``buy_once``: each form served carries its own key, so it buys at most once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from starlette.responses import Response

from otphub.domain import errors
from otphub.http.console.customer.common import me
from otphub.http.console.web import Visit, customer_page, redirect, render
from otphub.services import idempotency, prices, purchase
from otphub.services.runtime import Runtime

DEFAULT_SERVICE = "tg"
MAX_FIELD = 64
PURCHASE_KEY_PREFIX = "console-"


@dataclass(frozen=True, slots=True)
class Choice:
    """What the pickers hold."""

    service: str
    country: int
    operator: str
    max_price: str


def _choice(rt: Runtime, service: str, country: str, operator: str, max_price: str) -> Choice:
    """The pickers' values; an unknown service or country falls back to the default (the
    fragments refuse them instead, see ``_levels``)."""
    if service not in rt.catalog.services:
        service = DEFAULT_SERVICE if DEFAULT_SERVICE in rt.catalog.services else ""
        if not service and rt.catalog.services:
            service = min(rt.catalog.services)
    wanted = int(country) if country.isascii() and country.isdigit() and len(country) < 9 else 0
    if wanted not in rt.catalog.countries:
        wanted = 0 if 0 in rt.catalog.countries else min(rt.catalog.countries, default=0)
    return Choice(service, wanted, operator.strip()[:MAX_FIELD], max_price.strip()[:MAX_FIELD])


async def _levels(rt: Runtime, choice: Choice) -> list[prices.PriceLevel]:
    return await prices.levels(
        rt, service=choice.service, country=str(choice.country), operator=choice.operator or None
    )


async def _operators(rt: Runtime, country: int) -> list[str]:
    return (await prices.operators(rt, country=str(country))).get(country, [])


def _services(rt: Runtime) -> list[tuple[str, str]]:
    return sorted(rt.catalog.services.items(), key=lambda item: item[1].lower())


def _countries(rt: Runtime) -> list[tuple[int, str]]:
    return sorted(
        ((c.id, c.name_en) for c in rt.catalog.countries.values()), key=lambda c: c[1].lower()
    )


async def _page(
    visit: Visit, choice: Choice, *, error: str | None = None, status_code: int = 200
) -> Response:
    rt = visit.rt
    return render(
        visit,
        "customer/buy.html",
        status_code=status_code,
        choice=choice,
        services=_services(rt),
        countries=_countries(rt),
        operators=await _operators(rt, choice.country),
        levels=await _levels(rt, choice),
        error=error,
        # One purchase per form served: a second submit of the same form (a double click,
        # a reload that re-posts) answers with the first purchase instead of buying again.
        purchase_key=PURCHASE_KEY_PREFIX + secrets.token_urlsafe(18),
    )


def _from_query(visit: Visit) -> Choice:
    query = visit.request.query_params
    return _choice(
        visit.rt,
        query.get("service", ""),
        query.get("country", ""),
        query.get("operator", ""),
        query.get("max_price", ""),
    )


@customer_page
async def buy_page(visit: Visit) -> Response:
    if visit.request.method == "GET":
        return await _page(visit, _from_query(visit))
    choice = _choice(
        visit.rt,
        visit.field("service"),
        visit.field("country"),
        visit.field("operator"),
        visit.field("max_price"),
    )
    if visit.field("do") == "prices":  # "Show prices" without JavaScript
        return await _page(visit, choice)
    if choice.max_price:
        try:
            visit.rt.money.parse(choice.max_price, allow_zero=True)
        except errors.InvalidAmount:
            example = visit.rt.money.format(50 * visit.rt.money.scale // 100)
            return await _page(
                visit,
                choice,
                error=f"The maximum price must be an amount such as {example}, or left empty.",
                status_code=400,
            )
    # What was sent, not the pickers' fallbacks: an unknown service or country is refused
    # (BAD_SERVICE, BAD_COUNTRY), never bought as another one.
    request = purchase.PurchaseRequest(
        service=visit.field("service")[:MAX_FIELD] or None,
        country=visit.field("country")[:MAX_FIELD] or None,
        operator=choice.operator or None,
        max_price=choice.max_price or None,
    )
    key = visit.field("purchase")[:MAX_FIELD]
    if not key.startswith(PURCHASE_KEY_PREFIX) or len(key) < len(PURCHASE_KEY_PREFIX) + 16:
        key = PURCHASE_KEY_PREFIX + secrets.token_urlsafe(18)  # an old form: bought once anyway
    fields = (request.service, request.country, request.operator, request.max_price)
    try:
        answer = await idempotency.buy_once(
            visit.rt,
            customer=me(visit),
            key=key,
            request_hash=hashlib.sha256(repr(fields).encode()).hexdigest(),
            request=request,
            render=lambda act: f"{act.id}:{act.phone}:{act.price}",
        )
    except errors.ProtocolError as refused:
        return await _page(
            visit,
            choice,
            error=errors.explain(refused.word),
            status_code=errors.http_status(refused.word),
        )
    activation_id, phone, price = answer.body.split(":")
    return redirect(
        visit,
        f"/activations/{activation_id}",
        flash=f"You bought +{phone} for {visit.rt.money.format(int(price))} "
        f"{visit.rt.settings.money.code}.",
    )


@customer_page
async def offers_fragment(visit: Visit) -> Response:
    """The offers table for the pickers' selection (the page's script swaps it in)."""
    query = visit.request.query_params
    service = query.get("service", "")[:MAX_FIELD]
    country = query.get("country", "")[:MAX_FIELD]
    error = None
    levels: list[prices.PriceLevel] = []
    try:
        levels = await prices.levels(
            visit.rt,
            service=service,
            country=country,
            operator=query.get("operator", "")[:MAX_FIELD].strip() or None,
        )
    except errors.ProtocolError as refused:
        error = errors.explain(refused.word)
    return render(
        visit,
        "customer/offers.html",
        status_code=200 if error is None else 400,
        levels=levels,
        error=error,
    )


@customer_page
async def operators_fragment(visit: Visit) -> Response:
    """The operator picker's options for a country (the page's script swaps them in)."""
    raw = visit.request.query_params.get("country", "")
    choice = _choice(
        visit.rt, DEFAULT_SERVICE, raw, visit.request.query_params.get("operator", ""), ""
    )
    return render(
        visit,
        "customer/operators.html",
        operators=await _operators(visit.rt, choice.country),
        selected=choice.operator,
    )
