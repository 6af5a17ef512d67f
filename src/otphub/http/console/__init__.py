"""The web console: customers at ``/``, operators at ``/admin``, served by the app itself
(templates and assets from this package, nothing from a CDN)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from otphub.http.console import admin, customer, signin
from otphub.http.console.web import Visit, not_found, operator_page


@operator_page
async def _no_admin_page(visit: Visit) -> Response:
    return not_found(visit)


def routes() -> list[BaseRoute]:
    return [
        *signin.routes(),
        *customer.routes(),
        *admin.routes(),
        # Any other path under /admin answers as the operator's pages do to whoever may not
        # see them (a customer: the 404 page; a stranger: sign in first), so that a customer
        # cannot tell /admin's pages from paths that do not exist.
        Route("/admin/{rest:path}", _no_admin_page, methods=["GET", "POST"]),
        Mount(
            "/static", app=StaticFiles(packages=[("otphub.http.console", "static")]), name="static"
        ),
    ]
