"""A direct line from the server to the customer API's endpoint.

Status polls are most of the traffic, and each is a few tens of microseconds of OTPHub's
own work. Starlette's router (matching every route in turn), its exception middleware
and its request/response wrapper added about a tenth to a poll's cost. This middleware
sends the customer API's GET and POST requests straight to its endpoint; everything else
(other paths, other methods, a ``root_path``) goes through Starlette as before, so the
answers are the same either way (the golden tests run through this path).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


class Shortcut:
    def __init__(self, app: Any, *, paths: tuple[str, ...], endpoint: Endpoint) -> None:
        self.app = app
        self._paths = frozenset(paths)
        self._endpoint = endpoint

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] in self._paths
            and scope["method"] in ("GET", "POST")
            and not scope.get("root_path")
        ):
            # The endpoint never raises: every failure is an answer (ERROR_SQL at worst).
            response = await self._endpoint(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
