"""The interactive docs page (Swagger UI) with its assets served by the app itself, from
the ``swagger-ui-py`` package: the page works offline, with no CDN. And the event stream's
entry in the OpenAPI document: the stream is answered by ``http/events`` (a route of the
outer app, matched before this API), so it is described here by hand."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

# The files of Swagger UI's distribution the page loads, and their types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


@functools.cache
def _asset(name: str) -> bytes:
    # Found without importing the package: only its static files are used, never its code.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return (Path(spec.submodule_search_locations[0]) / "static" / name).read_bytes()


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def docs_page(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title="OTPHub API v1",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        # No call to the public validator service: the page stays offline.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )


async def docs_asset(request: Request) -> Response:
    name = request.path_params["name"]
    kind = ASSETS.get(name)
    if kind is None:
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    return Response(
        _asset(name), media_type=kind, headers={"Cache-Control": "public, max-age=86400"}
    )


EVENTS_PATH: dict[str, Any] = {
    "get": {
        "tags": ["activations"],
        "summary": "The activation's changes as they happen (Server-Sent Events)",
        "description": (
            "First every stored SMS (`event: sms`, oldest first) and the current state "
            "(`event: state`, the activation object); then each change as it happens. Every "
            "event has an `id:`: a client that reconnects with `Last-Event-ID` gets only "
            "what it has not seen. The stream ends after the final state (finished or "
            "cancelled). `: ping` comments every 15 seconds keep proxies from closing it. "
            "Browsers' EventSource cannot send headers: the key may then be given as the "
            "query parameter `api_key`."
        ),
        "operationId": "activation_events",
        "security": [{"CustomerKey": []}],
        "parameters": [
            {
                "name": "activation_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The id of the last event received, to resume after it.",
            },
            {
                "name": "api_key",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "The customer key, where an Authorization header cannot be sent.",
            },
        ],
        "responses": {
            "200": {
                "description": "The stream.",
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "example": (
                            "id: 1-0\nevent: sms\ndata: "
                            '{"id":7,"text":"Telegram code: 48213","code":"48213",'
                            '"received_at":"2026-06-01T17:31:02Z"}\n\n'
                            "id: 1-1\nevent: state\ndata: {...the activation object...}\n\n"
                        ),
                    }
                },
            },
            "401": {"description": "NO_KEY or BAD_KEY"},
            "403": {"description": "BANNED"},
            "404": {"description": "NO_ACTIVATION (also another customer's)"},
            "429": {"description": "TOO_MANY_REQUESTS"},
        },
    }
}


def install_openapi(app: FastAPI) -> None:
    """The document FastAPI builds from the routes and models, plus the event stream."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=app.servers,
            )
            document["paths"]["/activations/{activation_id}/events"] = EVENTS_PATH
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
