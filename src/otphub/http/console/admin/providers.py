"""``/admin/providers``: every provider with its stock, health and earnings; one provider's
stock by service and country and its record; enabling and disabling a provider."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.domain import errors
from otphub.http.console.admin.common import actor, change, path_id
from otphub.http.console.web import Endpoint, Visit, not_found, operator_page, render
from otphub.services import operator, prices, provider_accounts, reports, upstream_stock

# Stock lines shown on a provider's page (the biggest first); the rest are counted.
MAX_STOCK_LINES = 200


def health(p: reports.ProviderRow) -> tuple[str, str]:
    """(the words, a badge class): a remote provider is up or down as its poller saw it."""
    if p.kind == "local":
        return "local", "done"
    if p.down_since is not None:
        return "down", "bad"
    return ("up, never polled" if p.polled_at is None else "up"), "live"


@operator_page
async def providers(visit: Visit) -> Response:
    found = await reports.list_providers(visit.rt)
    terms = await upstream_stock.terms(visit.rt)
    return render(visit, "admin/providers.html", providers=found, terms=terms, health=health)


@operator_page
async def provider(visit: Visit) -> Response:
    provider_id = path_id(visit)
    try:
        detail = await reports.show_provider(visit.rt, provider_id=provider_id)
    except errors.NotFound:
        return not_found(visit)
    stats = await provider_accounts.stats(visit.rt, provider_id=provider_id, with_stock=False)
    remote = detail.provider.kind != "local"
    stock = sorted(
        (
            provider_accounts.StockEntry(
                line.service, line.country_id, line.count, line.price, remote
            )
            for line in await prices.stock_of_provider(visit.rt, provider_id)
        ),
        key=lambda e: -e.count,
    )
    return render(
        visit,
        "admin/provider.html",
        p=detail.provider,
        stats=stats,
        stock=stock[:MAX_STOCK_LINES],
        more=max(0, len(stock) - MAX_STOCK_LINES),
        health=health,
    )


def _switch(enabled: bool) -> Endpoint:
    @operator_page
    async def endpoint(visit: Visit) -> Response:
        provider_id = path_id(visit)

        async def do() -> str:
            p = await operator.set_provider_enabled(
                visit.rt, provider_id=provider_id, enabled=enabled, by=actor(visit)
            )
            return f"Provider {p.id} ({p.name}) {'enabled' if enabled else 'disabled'}."

        return await change(visit, "/admin/providers", do)

    return endpoint


@operator_page
async def pay_out(visit: Visit) -> Response:
    provider_id = path_id(visit)
    here = f"/admin/providers/{provider_id}"

    async def do() -> str:
        rt = visit.rt
        note = visit.field("note").strip()
        done = await provider_accounts.pay_out(
            rt,
            provider_id=provider_id,
            amount=rt.money.parse(visit.field("amount").strip()),
            note=note or None,
            by=actor(visit),
        )
        return (
            f"Payout of {rt.money.format(done.amount)} recorded; still owed "
            f"{rt.money.format(done.payable)}."
        )

    return await change(visit, here, do)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/providers", providers, methods=["GET"]),
        Route("/admin/providers/{id:int}", provider, methods=["GET"]),
        Route("/admin/providers/{id:int}/enable", _switch(True), methods=["POST"]),
        Route("/admin/providers/{id:int}/disable", _switch(False), methods=["POST"]),
        Route("/admin/providers/{id:int}/payout", pay_out, methods=["POST"]),
    ]
