"""The customer's pages: balance, buying, the live activation, history, keys, webhooks."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
