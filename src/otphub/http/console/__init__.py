"""The web console: customers at ``/``, operators at ``/admin``, served by the app itself
(templates and assets from this package, nothing from a CDN)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from otphub.http.console import admin, customer, signin


def routes() -> list[BaseRoute]:
    return [
        *signin.routes(),
        *customer.routes(),
        *admin.routes(),
        Mount(
            "/static", app=StaticFiles(packages=[("otphub.http.console", "static")]), name="static"
        ),
    ]
