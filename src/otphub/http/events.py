"""``GET /api/v1/activations/{id}/events``: an activation's changes as Server-Sent Events.

First what the client has not seen (on a new connection: every SMS of the activation as
``sms`` events, oldest first, then one ``state`` event), then each change as it happens;
the final ``state`` of an ended activation closes the stream. Every event's id says what
the client has seen, ``<last SMS id>.<digest of the last state>``, so a client that
reconnects with ``Last-Event-ID`` resumes on any process of the deployment without any
state kept on the server. While waiting, the stream holds no database connection (see
``services/changes.py``); a ``: ping`` comment every 15 s keeps proxies from closing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response

from otphub import metrics
from otphub.domain import errors
from otphub.domain.activation import LIVE_STATES, Activation
from otphub.http import limits
from otphub.http.activation_json import activation_json, sms_json
from otphub.http.api_v1.refusals import refusal
from otphub.http.limits import Limiter
from otphub.services import accounts, changes, lifecycle
from otphub.services.accounts import Customer
from otphub.services.changes import Receive
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.events")

PING_SECONDS = 15.0
RETRY_MS = 2000
# Wake this long after the activation's deadline (whole seconds), when the re-read resolves it.
_PAST_DEADLINE = 0.05
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _presented_key(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("api_key")


async def _customer(request: Request, rt: Runtime, limiter: Limiter) -> Customer | Response:
    try:
        customer = await accounts.authenticate_customer(rt, _presented_key(request))
    except errors.BadKey as refused:
        blocked = limiter.failed_auth(request.client.host if request.client else "-")
        return _too_many("auth_failures", blocked) if blocked else refusal(refused.word)
    wait = await limiter.customer_wait(rt, customer)
    if wait:
        return _too_many("key_rate", wait)
    return customer


def _too_many(reason: str, seconds: float) -> Response:
    metrics.RATE_LIMITED.labels(reason).inc()
    response = refusal("TOO_MANY_REQUESTS")
    response.headers["Retry-After"] = limits.retry_after(seconds)
    return response


async def activation_events(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    limiter: Limiter = request.app.state.limiter
    try:
        found = await _customer(request, rt, limiter)
        if isinstance(found, Response):
            return found
        return await stream_of(request, rt, found)
    except errors.ProtocolError as refused:
        return refusal(refused.word)


async def stream_of(request: Request, rt: Runtime, customer: Customer) -> Response:
    """The stream of the customer's activation ``activation_id`` (a path parameter), for
    a customer already accepted: by API key here, by session cookie in the web console.
    Raises ``ProtocolError`` (``NO_ACTIVATION`` for another customer's) before anything
    is sent; each caller words the refusal its own way."""
    act = await lifecycle.current(
        rt, customer=customer, activation_id=request.path_params["activation_id"]
    )
    if act.state in LIVE_STATES and changes.crowded(rt, act.id):
        # Enough streams follow this activation here already (changes.py says why).
        return _too_many("waiters_per_activation", 5.0)
    seen = Seen.parse(request.headers.get("last-event-id"))
    return EventStream(lambda receive: _stream(rt, customer, act, seen, receive))


class EventStream(Response):
    """A ``text/event-stream`` answer. Not Starlette's StreamingResponse: under uvicorn's ASGI
    2.3 that runs each stream in a task group of two tasks to hear the client leave; here
    the stream's own waits read ``receive`` (``changes.Watch``), so a stream costs its
    connection and one task, and one whose client went away ends at once."""

    media_type = "text/event-stream; charset=utf-8"

    def __init__(self, events: Callable[[Receive], AsyncIterator[str]]) -> None:
        self.status_code = 200
        self.background = None
        self._events = events
        self.init_headers(_HEADERS)  # no body: no Content-Length

    async def __call__(self, scope: Any, receive: Receive, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for chunk in self._events(receive):
            await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
        # After the final state, or with the client gone (then the server drops it).
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Seen:
    """What the client has seen: the id of its last SMS and the digest of its last state."""

    def __init__(self, sms_id: int = 0, state: str = "") -> None:
        self.sms_id = sms_id
        self.state = state

    @classmethod
    def parse(cls, token: str | None) -> Seen:
        """A ``Last-Event-ID``; anything unreadable counts as nothing seen."""
        if not token:
            return cls()
        sms_id, _, state = token.strip().partition(".")
        if not sms_id.isdigit() or len(sms_id) > 19:
            return cls()
        return cls(int(sms_id), state[:32])

    def token(self) -> str:
        return f"{self.sms_id}.{self.state or '-'}"


def _event(kind: str, token: str, data: str) -> str:
    return f"id: {token}\nevent: {kind}\ndata: {data}\n\n"


def _line(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _news(rt: Runtime, act: Activation, stored: list[lifecycle.Sms], seen: Seen) -> str:
    """The events the client has not seen (``seen`` moves on): each SMS after its last one,
    then the state if it differs. Apart from the generator, so that none of this is kept
    while the stream waits (each stream's memory counts, 10,000 at a time)."""
    out = []
    for sms in stored:
        seen.sms_id = sms.id
        data = sms_json(sms_id=sms.id, text=sms.text, code=sms.code, received_at=sms.received_at)
        out.append(_event("sms", seen.token(), _line(data)))
    state = _line(activation_json(rt, act))
    digest = hashlib.sha256(state.encode()).hexdigest()[:16]
    if digest != seen.state:
        seen.state = digest
        out.append(_event("state", seen.token(), state))
    return "".join(out)


async def _stream(
    rt: Runtime, customer: Customer, act: Activation, seen: Seen, receive: Receive
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    yield f"retry: {RETRY_MS}\n\n"
    next_ping = loop.time() + PING_SECONDS
    first = True
    while True:
        # Registered before the re-read: a change committed in between still wakes us.
        async with changes.watch(rt, act.id) as watching:
            try:
                if not first:
                    act = await lifecycle.current(rt, customer=customer, activation_id=str(act.id))
                first = False
                stored = await lifecycle.sms_after(rt, activation_id=act.id, after=seen.sms_id)
                news = _news(rt, act, stored, seen)
            except Exception:
                # Headers are sent: end the stream; the client reconnects (``retry``) and
                # resumes from what it saw.
                log.exception("event_stream_failure")
                return
            del stored
            if news:
                yield news
                next_ping = loop.time() + PING_SECONDS
            del news
            if act.state not in LIVE_STATES:
                return  # the final state is sent: the server closes the stream
            until_deadline = act.expires_at - rt.clock.now() + _PAST_DEADLINE
            deadline_at = loop.time() + max(until_deadline, _PAST_DEADLINE)
            while True:  # a ping re-reads nothing: the same registration waits on
                woken = await watching.wait(
                    min(next_ping, deadline_at) - loop.time(), receive=receive
                )
                if watching.gone:
                    return  # the client went away
                if woken or loop.time() >= deadline_at:
                    break
                yield ": ping\n\n"
                next_ping = loop.time() + PING_SECONDS
