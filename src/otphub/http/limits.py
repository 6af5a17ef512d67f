"""Abuse limits: per-key request rates, failed authentications per IP, request sizes.

Token buckets in the memory of each server process. With N workers or nodes a key can
reach N times its rate in total (each process counts alone); the per-IP limit on failed
authentications likewise. This is stated in the README: the limits stop floods and key
guessing, they are not a billing meter.

The failed-authentication limit is consulted only once a key has failed: a request with a
valid key is never refused by it, so one client sending bad keys behind a NAT does not
lock out the customers and providers that share its address. A blocked address gets 429
instead of ``BAD_KEY`` (or the supplier endpoint's 401) for every further bad key.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otphub.services import usage
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

MAX_BODY = 64 * 1024
MAX_QUERY = 8 * 1024
MAX_PARAMS = 64
MAX_VALUE = 1024
# Each live activation adds this many requests per second to its customer's keys, so that
# polling every activation once a second is never throttled.
PER_LIVE_ACTIVATION = 2
LIVE_COUNT_TTL = 5.0  # seconds a customer's live-activation count is reused
# Buckets kept per table (keys, addresses). Beyond it the least telling buckets go first:
# those full again (as good as absent), then those with the most tokens left; an address
# that is blocked has none, so a flood of new addresses cannot wash the blocks away.
_MAX_BUCKETS = 100_000
# When a table is full, it is trimmed to this share of the maximum, so that the O(n) trim
# runs once per tenth of the table's size of new entries, not on every one.
_TRIM_TO = 0.9


class RequestTooLarge(Exception):
    """A body, query string or parameter over the limits: answered 413."""


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float
    rate: float = 0.0  # as of the last take (a key's rate follows its live activations)
    capacity: float = 0.0

    def take(self, *, rate: float, capacity: float, now: float) -> float:
        """Take one token; 0 when allowed, else the seconds until one is there."""
        self.tokens = min(capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        self.rate = rate
        self.capacity = capacity
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


class Buckets:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[object, Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: object, *, rate: float, capacity: float) -> float:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._trim(now)
            bucket = self._buckets[key] = Bucket(tokens=capacity, updated=now)
        return bucket.take(rate=rate, capacity=capacity, now=now)

    def _trim(self, now: float) -> None:
        """Make room without forgetting what matters: first every bucket that is full again
        (forgetting it changes nothing), then, if that is not enough, those with the most
        tokens, so the emptiest (blocked addresses, keys at their limit) stay."""
        left = {
            key: min(b.capacity, b.tokens + (now - b.updated) * b.rate)
            for key, b in self._buckets.items()
        }
        kept = [key for key, tokens in left.items() if tokens < self._buckets[key].capacity]
        room = int(_MAX_BUCKETS * _TRIM_TO)
        if len(kept) > room:
            kept = sorted(kept, key=left.__getitem__)[:room]
        self._buckets = {key: self._buckets[key] for key in kept}


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class Limiter:
    def __init__(
        self,
        *,
        auth_failures_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._keys = Buckets(clock)
        self._ips = Buckets(clock)
        self._live: dict[int, tuple[int, float]] = {}
        self._auth_capacity = float(auth_failures_per_minute)
        self._auth_rate = auth_failures_per_minute / 60.0

    # -- failed authentications per client address
    def failed_auth(self, ip: str) -> float:
        """Count a failed authentication from ``ip``. 0: answer it as a bad key; else the
        address is blocked, and this many seconds pass before its next failure is allowed
        (answer 429). Called only after a key has failed, never before checking one."""
        if self._auth_capacity <= 0:
            return 0.0
        return self._ips.take(ip, rate=self._auth_rate, capacity=self._auth_capacity)

    # -- requests per key
    async def customer_wait(self, rt: Runtime, customer: Customer) -> float:
        base = customer.rate_limit if customer.rate_limit is not None else rt.settings.rate_limit
        if base <= 0:
            return 0.0
        rate = base + PER_LIVE_ACTIVATION * await self._live_count(rt, customer.id)
        return self._keys.take(customer.key_id, rate=rate, capacity=rate)

    async def _live_count(self, rt: Runtime, customer_id: int) -> int:
        now = self._clock()
        cached = self._live.get(customer_id)
        if cached is not None and now - cached[1] < LIVE_COUNT_TTL:
            return cached[0]
        count = await usage.live_activation_count(rt, customer_id=customer_id)
        if len(self._live) >= _MAX_BUCKETS:
            self._live.clear()
        self._live[customer_id] = (count, now)
        return count


ASGIApp = Callable[..., Any]


class BodyLimit:
    """Pure ASGI middleware: reads a request's body up to ``MAX_BODY`` before the app sees
    it, and answers 413 ``REQUEST_TOO_LARGE`` beyond, whatever the framing (length or
    chunks). The app then reads the buffered body as usual."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _framing(scope)
        if declared is not None and declared > self.max_body:
            await _too_large(send, scope)
            return
        if not declared and not chunked:
            # No body at all (a GET, as most requests are): nothing to buffer.
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _too_large(send, scope)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                message: dict[str, Any] = await receive()
                return message
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _framing(scope: dict[str, Any]) -> tuple[int | None, bool]:
    """The declared Content-Length (``None``: absent or unreadable) and whether a
    Transfer-Encoding is given (the body then comes in chunks of unknown total)."""
    declared: int | None = None
    chunked = False
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                chunked = True  # unreadable: read what comes, within the limit
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def _too_large(send: Any, scope: Any) -> None:
    await send_refusal(
        send, scope, status=413, word="REQUEST_TOO_LARGE", agent_error="body too large"
    )


async def send_refusal(send: Any, scope: Any, *, status: int, word: str, agent_error: str) -> None:
    """Refuse a request from a pure-ASGI layer and close the connection: the protocol word
    for customers, the agent protocol's JSON error on ``/agent/``."""
    body = word.encode()
    kind = b"text/plain; charset=utf-8"
    if scope.get("path", "").startswith("/agent/"):
        body = json.dumps({"status": "ERROR", "error": agent_error}, separators=(",", ":")).encode()
        kind = b"application/json; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
