"""API v1's refusals: the protocol's words with their HTTP statuses and plain-language
meanings (``domain/errors.py``'s one table), as ``{"error", "message"}``; malformed
requests as 400 ``BAD_REQUEST`` with details; never a trace."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import structlog
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from otphub.domain import errors
from otphub.http.answers import json_answer
from otphub.services import idempotency

log = structlog.get_logger("otphub.api_v1")


class Refused(Exception):
    """A refusal decided in the HTTP layer (rate limits), with its headers."""

    def __init__(self, word: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(word)
        self.word = word
        self.headers = dict(headers or {})


class BadParameter(Exception):
    """A parameter that the models cannot check alone (a list written in a string)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def refusal(word: str, headers: Mapping[str, str] | None = None) -> Response:
    """A protocol word as API v1 answers it."""
    name = errors.refusal_name(word)
    body: dict[str, Any] = {"error": name, "message": errors.explain(word)}
    detail = word.partition(":")[2]
    if name == "WRONG_MAX_PRICE" and detail:
        body["min_price"] = float(detail)
    elif name == "BANNED" and detail:
        # The protocol writes the time as 'YYYY-MM-DD HH-MM-SS'; here as a time is written.
        day, _, clock = detail.strip("'").partition(" ")
        body["until"] = f"{day} {clock.replace('-', ':')}"
    response = json_answer(body, status_code=errors.http_status(word))
    if name in ("NO_KEY", "BAD_KEY"):
        response.headers["WWW-Authenticate"] = 'Bearer realm="otphub"'
    response.headers.update(headers or {})
    return response


def conflict(name: str, message: str) -> Response:
    return json_answer({"error": name, "message": message}, status_code=409)


def bad_request(message: str, details: Sequence[Mapping[str, str]] = ()) -> Response:
    body = {"error": "BAD_REQUEST", "message": message, "details": list(details)}
    return json_answer(body, status_code=400)


def _field(loc: Sequence[object]) -> str:
    # ("body", "provider_ids", 0) -> "provider_ids.0"; ("query", "limit") -> "limit"
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def validation_failed(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in exc.errors()
    ]
    return bad_request("The request is malformed: see details.", details)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    names = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    body = {"error": names.get(exc.status_code, "BAD_REQUEST"), "message": str(exc.detail)}
    response = json_answer(body, status_code=exc.status_code)
    response.headers.update(exc.headers or {})
    return response


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class GuardedRoute(APIRoute):
    """Every endpoint's refusals and failures answered here, inside the route, so that
    nothing reaches Starlette's error middleware (which would log a trace and re-raise)."""

    def get_route_handler(self) -> Handler:
        handler = self._answer_of(super().get_route_handler())

        async def logged(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            # A line per request (never the key, the body or the query), as the customer
            # API's; GET /activations/{id} is this API's status poll.
            setting = request.app.state.runtime.settings.log_requests
            poll = self.path_format == "/activations/{activation_id}" and response.status_code < 300
            if setting == "all" or (setting == "except_polls" and not poll):
                client = request.client
                log.info(
                    "request",
                    api="v1",
                    method=request.method,
                    path=self.path_format,
                    status=response.status_code,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                    ip=client.host if client else "-",
                )
            return response

        return logged

    def _answer_of(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException):
                raise  # answered by the app's handlers above
            except BadParameter as bad:
                return bad_request(
                    "The request is malformed: see details.",
                    [{"field": bad.field, "message": bad.message}],
                )
            except Refused as refused:
                return refusal(refused.word, refused.headers)
            except errors.ProtocolError as refused:
                return refusal(refused.word)
            except idempotency.KeyReused:
                return conflict(
                    "IDEMPOTENCY_KEY_REUSED",
                    "This Idempotency-Key was used with another request body.",
                )
            except idempotency.KeyInUse:
                return conflict(
                    "IDEMPOTENCY_KEY_IN_USE",
                    "A request with this Idempotency-Key is in progress: retry shortly.",
                )
            except errors.InvalidInput as invalid:
                return bad_request(str(invalid))
            except errors.NotFound as missing:
                return json_answer({"error": "NOT_FOUND", "message": str(missing)}, 404)
            except Exception:
                # Never a trace or SQL to the client; the operator sees it in the log.
                log.exception("api_v1_failure", path=self.path_format)
                return refusal("ERROR_SQL")

        return guarded
