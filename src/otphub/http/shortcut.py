"""A direct line from the server to the customer API's endpoint.

Status polls are most of the traffic, and each is a few tens of microseconds of OTPHub's
own work. Starlette's router (matching every route in turn), its exception middleware
and its request/response wrapper added about a tenth to a poll's cost. This middleware
sends the customer API's GET and POST requests straight to its endpoint, and the event
streams' GETs to theirs; everything else
(other paths, other methods, a ``root_path``) goes through Starlette as before, so the
answers are the same either way (the golden tests run through this path).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]
# The event stream's path (its Route in app.py answers the same, e.g. behind a root_path).
_EVENTS = re.compile(r"/api/v1/activations/([0-9]{1,19})/events")


class Shortcut:
    def __init__(
        self,
        app: Any,
        *,
        paths: tuple[str, ...],
        endpoint: Endpoint,
        events: Endpoint | None = None,
    ) -> None:
        self.app = app
        self._paths = frozenset(paths)
        self._endpoint = endpoint
        self._events = events

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
        if self._events is not None and scope["type"] == "http" and scope["method"] == "GET":
            found = _EVENTS.fullmatch(scope["path"])
            if found is not None and not scope.get("root_path"):
                # An event stream lives as long as its activation: the router's and the
                # exception middleware's frames would stay on its stack all along, a few
                # kilobytes of each of 10,000 streams.
                scope["path_params"] = {"activation_id": found.group(1)}
                response = await self._events(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
