"""The operator's pages under /admin: dashboard, providers, offers, numbers, customers,
audit, unmatched SMS and the record of changes."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
