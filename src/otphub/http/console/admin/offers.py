"""``/admin/offers``: offers and prices. A form adds an offer (or changes the one of the same
provider, service and country, as `otphub offer set`); each offer's price (and payout) is
edited in its row; a bulk form changes every offer of a service or of a country at once. The rules
(positive price, payout within it) are inventory's: these pages only read the forms."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.domain import errors
from otphub.domain.supply import parse_markup_percent
from otphub.http.console.admin.common import actor, back_to, change, optional_int, path_id, query
from otphub.http.console.web import Endpoint, Visit, operator_page, render
from otphub.services import inventory, operator, reports

PAGE = 200


@operator_page
async def offers(visit: Visit) -> Response:
    service = query(visit, "service") or None
    country_id = optional_int(query(visit, "country"), what="the country")
    provider_id = optional_int(query(visit, "provider"), what="the provider")
    state = query(visit, "state")
    found = await reports.list_offers(
        visit.rt,
        provider_id=provider_id,
        service=service,
        country_id=country_id,
        enabled={"enabled": True, "disabled": False}.get(state),
        limit=PAGE + 1,
    )
    filters = {
        k: v
        for k, v in (
            ("service", service or ""),
            ("country", "" if country_id is None else str(country_id)),
            ("provider", "" if provider_id is None else str(provider_id)),
            ("state", state),
        )
        if v
    }
    here = "/admin/offers" + ("?" + urlencode(filters) if filters else "")
    return render(
        visit,
        "admin/offers.html",
        offers=found[:PAGE],
        more=len(found) > PAGE,
        filters=filters,
        here=here,
        services=sorted(visit.rt.catalog.services.items()),
        countries=sorted(visit.rt.catalog.countries.values(), key=lambda c: c.id),
    )


@operator_page
async def save(visit: Visit) -> Response:
    offer_id = path_id(visit)
    back = back_to(visit, "/admin/offers")

    async def do() -> str:
        rt = visit.rt
        offer = await reports.show_offer(rt, offer_id=offer_id)
        payout_text = visit.field("payout").strip()
        await inventory.set_offer(
            rt,
            provider_id=offer.provider_id,
            service=offer.service,
            country_id=offer.country_id,
            price=rt.money.parse(visit.field("price").strip()),
            payout=rt.money.parse(payout_text, allow_zero=True) if payout_text else None,
            by=actor(visit),
        )
        now = await reports.show_offer(rt, offer_id=offer_id)
        return (
            f"Offer {offer_id}: price {rt.money.format(now.price)}, "
            f"payout {rt.money.format(now.payout)}."
        )

    return await change(visit, back, do)


@operator_page
async def new_offer(visit: Visit) -> Response:
    """`otphub offer set` from a form: without a payout, a new offer pays the provider the
    whole price. Done, the list shows that provider's offers."""
    provider_text = visit.field("provider").strip()
    shown = provider_text.isascii() and provider_text.isdigit() and len(provider_text) <= 18
    back = f"/admin/offers?provider={provider_text}" if shown else "/admin/offers"

    async def do() -> str:
        rt = visit.rt
        provider_id = optional_int(provider_text, what="the provider")
        country_id = optional_int(visit.field("country"), what="the country")
        service = visit.field("service").strip()
        if provider_id is None or country_id is None or not service:
            raise errors.InvalidInput("give the provider, the service and the country")
        payout_text = visit.field("payout").strip()
        offer_id = await inventory.set_offer(
            rt,
            provider_id=provider_id,
            service=service,
            country_id=country_id,
            price=rt.money.parse(visit.field("price").strip()),
            payout=rt.money.parse(payout_text, allow_zero=True) if payout_text else None,
            by=actor(visit),
        )
        now = await reports.show_offer(rt, offer_id=offer_id)
        return (
            f"Offer {offer_id} ({now.service}, country {now.country_id}, provider "
            f"{now.provider_id}): price {rt.money.format(now.price)}, "
            f"payout {rt.money.format(now.payout)}."
        )

    return await change(visit, back, do, failed_back=back_to(visit, "/admin/offers"))


def _switch(enabled: bool) -> Endpoint:
    @operator_page
    async def endpoint(visit: Visit) -> Response:
        offer_id = path_id(visit)

        async def do() -> str:
            await operator.set_offer_enabled(
                visit.rt, offer_id=offer_id, enabled=enabled, by=actor(visit)
            )
            return f"Offer {offer_id} {'enabled' if enabled else 'disabled'}."

        return await change(visit, back_to(visit, "/admin/offers"), do)

    return endpoint


def _percent(text: str) -> int:
    """``-10``, ``+5.5`` or ``12.25`` percent, in hundredths of a percent."""
    sign = -1 if text.startswith("-") else 1
    try:
        return sign * parse_markup_percent(text.lstrip("+-").rstrip("%").strip())
    except ValueError:
        raise errors.InvalidInput(
            f"a percent change is a number with at most two decimals, e.g. -10 or 5.5, not {text!r}"
        ) from None


@operator_page
async def bulk(visit: Visit) -> Response:
    back = back_to(visit, "/admin/offers")

    async def do() -> str:
        rt = visit.rt
        service = visit.field("service").strip() or None
        country_id = optional_int(visit.field("country"), what="the country")
        price_text = visit.field("price").strip()
        percent_text = visit.field("percent").strip()
        if price_text and percent_text:
            raise errors.InvalidInput("give a new price or a percent change, not both")
        changed = await inventory.set_prices(
            rt,
            service=service,
            country_id=country_id,
            price=rt.money.parse(price_text) if price_text else None,
            percent_bp=_percent(percent_text) if percent_text else None,
            by=actor(visit),
        )
        return f"{len(changed)} offer(s) changed."

    return await change(visit, back, do)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/offers", offers, methods=["GET"]),
        Route("/admin/offers/bulk", bulk, methods=["POST"]),
        Route("/admin/offers/new", new_offer, methods=["POST"]),
        Route("/admin/offers/{id:int}", save, methods=["POST"]),
        Route("/admin/offers/{id:int}/enable", _switch(True), methods=["POST"]),
        Route("/admin/offers/{id:int}/disable", _switch(False), methods=["POST"]),
    ]
