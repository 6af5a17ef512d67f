"""JSON API v1, under ``/api/v1``: FastAPI (on the same Starlette) validates the requests
and writes the OpenAPI document from the models; every rule is the services' own."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from otphub.http.api_v1 import account, activations, docs, refusals, webhooks
from otphub.http.limits import Limiter
from otphub.services.runtime import Runtime

PREFIX = "/api/v1"

DESCRIPTION = """\
JSON API for new integrations: the same customers, keys, money and rules as the
sms-activate protocol at `/stubs/handler_api.php`.

Authenticate with `Authorization: Bearer <customer API key>`. A refusal is an HTTP status with
`{"error": WORD, "message": text}`, `WORD` being the protocol's error word (`NO_BALANCE`,
`NO_NUMBERS`, ...); a malformed request is 400 `BAD_REQUEST` with `details`. Money is a JSON
number in the deployment's currency; times are ISO 8601 in UTC.
"""


def create_api(rt: Runtime, limiter: Limiter) -> FastAPI:
    """The app mounted at ``PREFIX``; ``limiter`` is the outer app's, so that the request
    rates and the failed authentications count across both APIs."""
    api = FastAPI(
        title="OTPHub API v1",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        servers=[{"url": PREFIX}],
        # Clients do not follow redirects: /balance/ is 404, never a 307 to /balance.
        redirect_slashes=False,
    )
    api.state.runtime = rt
    api.state.limiter = limiter
    api.include_router(account.router)
    api.include_router(activations.router)
    api.include_router(webhooks.router)
    api.add_route("/docs", docs.docs_page, methods=["GET"], include_in_schema=False)
    api.add_route("/docs/assets/{name}", docs.docs_asset, methods=["GET"], include_in_schema=False)
    api.add_exception_handler(RequestValidationError, refusals.validation_failed)
    api.add_exception_handler(HTTPException, refusals.http_error)
    docs.install_openapi(api)
    return api
