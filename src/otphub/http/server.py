"""``otphub serve``: uvicorn, with the limits a server facing the internet needs.

- A deadline for request headers (``OTPHUB_HEADER_TIMEOUT``). uvicorn has none: a client
  that opens a connection and sends nothing, or trickles its headers a byte at a time, keeps
  the connection for as long as it likes (checked with uvicorn 0.54: still open after
  25 s). ``HeaderDeadline`` closes it once the deadline has passed.
- A deadline for request bodies: ``otphub.http.body_timeout`` (ASGI, in the app).
- ``limit_concurrency`` (``OTPHUB_MAX_CONNECTIONS``): beyond it, uvicorn answers 503 at once
  instead of accepting more work than the process can finish.
- ``timeout_keep_alive`` (``OTPHUB_KEEP_ALIVE_SECONDS``) for idle connections between
  requests.
- Proxy headers (X-Forwarded-For, X-Forwarded-Proto) believed only from
  ``OTPHUB_FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

import asyncio
import functools

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from otphub.config import Settings

log = structlog.get_logger("otphub.server")

APP_FACTORY = "otphub.http.asgi:build"
GRACEFUL_SHUTDOWN_SECONDS = 10


@functools.cache
def _header_timeout() -> float:
    # Read once per process: uvicorn builds the protocol itself, in each worker process,
    # from an import string (a class made at run time could not be sent to the workers).
    return Settings().header_timeout


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, plus a deadline for each request's headers: from the
    connection's start for its first request (an idle new connection is cut too), from
    the request's first byte for the next ones (uvicorn's keep-alive timeout covers the
    wait between requests)."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        seconds = _header_timeout()
        if seconds > 0 and self._header_timer is None:
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.debug("headers_too_slow", client=self.client[0] if self.client else "-")
            self.transport.close()


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=f"{__name__}:{HeaderDeadline.__name__}",
        access_log=False,  # keys travel in query strings: never log request lines
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        limit_concurrency=settings.max_connections or None,
        timeout_keep_alive=settings.keep_alive_seconds,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
