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

Why not granian (2.8.9, evaluated for issue 8; it served getStatus about 1.7 times faster):
its main process always serves through child processes, and a SIGKILL of ``otphub serve``
left the child serving with its sweeper (the crash test's kills interrupted nothing and
left 20 servers behind); it has no 503 limit (``--backpressure`` makes requests wait) and
no keep-alive timeout of its own (its header-read timeout closes idle connections).
"""

from __future__ import annotations

import asyncio
import functools
import resource

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


class _HeaderWatch:
    """The connections waiting for a request's headers, with their deadlines; one check
    every ``interval`` seconds closes those past theirs. A timer per request would cost
    about 5 us each (uvloop's call_later and cancel); this costs a dict insert and pop."""

    def __init__(self) -> None:
        self._deadlines: dict[HeaderDeadline, float] = {}
        self._check: asyncio.TimerHandle | None = None

    def watch(self, conn: HeaderDeadline, seconds: float) -> None:
        # setdefault: a connection's first request counts from the connection's start.
        self._deadlines.setdefault(conn, conn.loop.time() + seconds)
        if self._check is None:
            self._check = conn.loop.call_later(min(1.0, seconds / 4), self._close_late, conn.loop)

    def unwatch(self, conn: HeaderDeadline) -> None:
        self._deadlines.pop(conn, None)

    def _close_late(self, loop: asyncio.AbstractEventLoop) -> None:
        self._check = None
        now = loop.time()
        late = [conn for conn, deadline in self._deadlines.items() if deadline <= now]
        for conn in late:
            del self._deadlines[conn]
            conn.headers_too_slow()
        if self._deadlines:
            self._check = loop.call_later(min(1.0, _header_timeout() / 4), self._close_late, loop)


_watch = _HeaderWatch()


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, plus a deadline for each request's headers: from the
    connection's start for its first request (an idle new connection is cut too), from
    the request's first byte for the next ones (uvicorn's keep-alive timeout covers the
    wait between requests). Closed at most a quarter of the deadline (or a second) late."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._watch()

    def on_headers_complete(self) -> None:
        _watch.unwatch(self)
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        _watch.unwatch(self)
        super().connection_lost(exc)

    def _watch(self) -> None:
        seconds = _header_timeout()
        if seconds > 0:
            _watch.watch(self, seconds)

    def headers_too_slow(self) -> None:
        if not self.transport.is_closing():
            log.debug("headers_too_slow", client=self.client[0] if self.client else "-")
            self.transport.close()


# Open files a server process needs beside its clients' connections: database connections
# (the pools, the LISTEN connection), the SQLite files, calls out to agents and webhooks.
FILES_BESIDE_CONNECTIONS = 512


def connection_ceiling(wanted: int) -> int:
    """How many connections this process can hold: ``wanted`` (OTPHUB_MAX_CONNECTIONS),
    with the soft limit of open files raised to fit it as far as the hard limit allows (as
    nginx's worker_rlimit_nofile does). Waiting requests (``wait=``, event streams) each
    hold a connection for up to a minute or more, so the default is 10,000, above the usual
    soft limit of 1,024 but below the usual hard limit. When even the hard limit is too
    low, the ceiling is lowered to fit it: beyond, accept() would fail with EMFILE and
    the server would stop answering anyone, while a 503 tells a client to come back."""
    if wanted <= 0:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FILES_BESIDE_CONNECTIONS
    if hard != resource.RLIM_INFINITY:
        needed = min(needed, hard)
    if needed > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
            soft = needed
        except (ValueError, OSError):
            pass
    fits = max(soft - FILES_BESIDE_CONNECTIONS, 64)
    if fits < wanted:
        log.warning(
            "max_connections_lowered",
            wanted=wanted,
            effective=fits,
            open_files_limit=soft,
            hint="raise the open-file limit (ulimit -n, systemd LimitNOFILE) above "
            "OTPHUB_MAX_CONNECTIONS + 512",
        )
        return fits
    return wanted


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
        limit_concurrency=connection_ceiling(settings.max_connections) or None,
        timeout_keep_alive=settings.keep_alive_seconds,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
