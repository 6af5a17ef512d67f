"""``/admin/numbers``: finding numbers (by phone, provider, country, status) and taking one
out of sale or putting it back (never one in a live activation: operator's rule)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.http.console.admin.common import actor, back_to, change, optional_int, path_id, query
from otphub.http.console.web import Endpoint, Visit, operator_page, render
from otphub.services import operator, reports

PAGE = 200


@operator_page
async def numbers(visit: Visit) -> Response:
    phone = "".join(ch for ch in query(visit, "phone") if ch != "+" and not ch.isspace())
    provider_id = optional_int(query(visit, "provider"), what="the provider")
    country_id = optional_int(query(visit, "country"), what="the country")
    status = query(visit, "status") or None
    found = await reports.list_numbers(
        visit.rt,
        provider_id=provider_id,
        country_id=country_id,
        operator=None,
        phone_prefix=phone or None,
        status=status,
        limit=PAGE + 1,
    )
    filters = {
        k: v
        for k, v in (
            ("phone", phone),
            ("provider", "" if provider_id is None else str(provider_id)),
            ("country", "" if country_id is None else str(country_id)),
            ("status", status or ""),
        )
        if v
    }
    return render(
        visit,
        "admin/numbers.html",
        numbers=found[:PAGE],
        more=len(found) > PAGE,
        filters=filters,
        here="/admin/numbers" + ("?" + urlencode(filters) if filters else ""),
        statuses=reports.NUMBER_STATUSES,
    )


def _switch(online: bool) -> Endpoint:
    @operator_page
    async def endpoint(visit: Visit) -> Response:
        number_id = path_id(visit)

        async def do() -> str:
            n = await operator.set_number_online(
                visit.rt, number_id=number_id, online=online, by=actor(visit)
            )
            return f"Number {n.id} ({n.phone}) {'enabled' if online else 'disabled'}."

        return await change(visit, back_to(visit, "/admin/numbers"), do)

    return endpoint


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/numbers", numbers, methods=["GET"]),
        Route("/admin/numbers/{id:int}/enable", _switch(True), methods=["POST"]),
        Route("/admin/numbers/{id:int}/disable", _switch(False), methods=["POST"]),
    ]
