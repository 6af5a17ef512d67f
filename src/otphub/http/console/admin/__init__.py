"""The operator's pages under /admin: dashboard, providers, offers, numbers, customers,
audit, unmatched SMS and the record of changes."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from otphub.http.console.admin import customers, dashboard, numbers, offers, providers, reviews


def routes() -> list[BaseRoute]:
    return [
        Route("/admin", dashboard.dashboard, methods=["GET"]),
        *providers.routes(),
        *offers.routes(),
        *numbers.routes(),
        *customers.routes(),
        *reviews.routes(),
    ]
