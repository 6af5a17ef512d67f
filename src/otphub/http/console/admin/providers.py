"""``/admin/providers``: every provider with its stock, health and earnings, and a new one;
one provider's stock by service and country, its record and (a local one's) new numbers;
enabling and disabling a provider. Creating goes through the shell's services
(accounts.add_provider, inventory.add_numbers) with their rules."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.domain import errors
from otphub.domain.supply import parse_markup_percent
from otphub.http.console.admin.common import actor, change, optional_int, path_id
from otphub.http.console.web import Endpoint, Visit, not_found, operator_page, render
from otphub.services import (
    accounts,
    inventory,
    operator,
    prices,
    provider_accounts,
    reports,
    upstream_stock,
)

# Stock lines shown on a provider's page (the biggest first); the rest are counted.
MAX_STOCK_LINES = 200


def health(p: reports.ProviderRow) -> tuple[str, str]:
    """(the words, a badge class): a remote provider is up or down as its poller saw it."""
    if p.kind == "local":
        return "local", "done"
    if p.down_since is not None:
        return "down", "bad"
    return ("up, never polled" if p.polled_at is None else "up"), "live"


# The new-provider form's fields shown again after a refusal: never the upstream's key.
KEPT_FIELDS = ("name", "kind", "url", "markup_percent", "markup")
KINDS = ("local", "agent", "upstream")


async def _providers_page(
    visit: Visit,
    *,
    created: accounts.NewProvider | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    found = await reports.list_providers(visit.rt)
    terms = await upstream_stock.terms(visit.rt)
    kept = {name: visit.field(name) for name in KEPT_FIELDS} if error else {}
    return render(
        visit,
        "admin/providers.html",
        status_code=status_code,
        providers=found,
        terms=terms,
        health=health,
        created=created,
        error=error,
        form=kept,
    )


@operator_page
async def providers(visit: Visit) -> Response:
    """The list; its POST is the new-provider form, answered on this page (never by a
    redirect): the provider's key exists in clear only in this answer."""
    if visit.request.method == "GET":
        return await _providers_page(visit)
    try:
        created = await _add_provider(visit)
    except (errors.InvalidInput, errors.NotFound) as refusal:
        return await _providers_page(visit, error=f"Not done: {refusal}", status_code=400)
    return await _providers_page(visit, created=created)


async def _add_provider(visit: Visit) -> accounts.NewProvider:
    """The form read as `otphub provider add`'s options: local (no URL), an SMSHub agent
    (its URL) or an upstream (its handler URL, OTPHub's key there, an optional markup)."""
    rt = visit.rt
    kind = visit.field("kind")
    url = visit.field("url").strip()
    upstream_key = visit.field("upstream_key").strip()
    percent = visit.field("markup_percent").strip().removesuffix("%").strip()
    amount = visit.field("markup").strip()
    if kind not in KINDS:
        raise errors.InvalidInput("choose the provider's kind: local, SMSHub agent or upstream")
    if kind != "upstream" and (upstream_key or percent or amount):
        raise errors.InvalidInput("an upstream key and a markup are for an upstream only")
    if kind == "local" and url:
        raise errors.InvalidInput("a local provider has no URL: it holds numbers added here")
    if kind == "upstream" and not upstream_key:
        raise errors.InvalidInput("an upstream needs OTPHub's API key at the upstream")
    try:
        markup_bp = parse_markup_percent(percent) if percent else 0
    except ValueError as refusal:
        raise errors.InvalidInput(str(refusal)) from None
    return await accounts.add_provider(
        rt,
        name=visit.field("name"),
        agent_url=accounts.checked_url(url, what="the agent's URL") if kind == "agent" else None,
        upstream_url=(
            accounts.checked_url(url, what="the upstream's handler URL")
            if kind == "upstream"
            else None
        ),
        upstream_key=upstream_key or None,
        markup_bp=markup_bp,
        markup_amount=rt.money.parse(amount, allow_zero=True) if amount else 0,
        by=actor(visit),
    )


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
        countries=sorted(visit.rt.catalog.countries.values(), key=lambda c: c.id),
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


@operator_page
async def add_numbers(visit: Visit) -> Response:
    """A local provider's numbers, one a line (`otphub number add`); an agent's or an
    upstream's numbers are theirs to announce, so the form refuses them."""
    provider_id = path_id(visit)
    here = f"/admin/providers/{provider_id}"

    async def do() -> str:
        rt = visit.rt
        p = (await reports.show_provider(rt, provider_id=provider_id)).provider
        if p.kind != "local":
            raise errors.InvalidInput(
                f"provider {p.id} is an {p.kind}: it announces its own numbers; numbers are "
                "added to a local provider only"
            )
        phones = [line.strip() for line in visit.field("phones").splitlines() if line.strip()]
        country_id = optional_int(visit.field("country"), what="the country")
        if country_id is None:
            raise errors.InvalidInput("choose the numbers' country")
        added = await inventory.add_numbers(
            rt,
            provider_id=provider_id,
            country_id=country_id,
            phones=phones,
            operator=visit.field("operator").strip() or None,
            by=actor(visit),
        )
        return f"{added} number(s) added ({len(phones) - added} known already)."

    return await change(visit, here, do)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/providers", providers, methods=["GET", "POST"]),
        Route("/admin/providers/{id:int}", provider, methods=["GET"]),
        Route("/admin/providers/{id:int}/enable", _switch(True), methods=["POST"]),
        Route("/admin/providers/{id:int}/disable", _switch(False), methods=["POST"]),
        Route("/admin/providers/{id:int}/payout", pay_out, methods=["POST"]),
        Route("/admin/providers/{id:int}/numbers", add_numbers, methods=["POST"]),
    ]
