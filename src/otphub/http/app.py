"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from otphub import metrics
from otphub.http import agent, console, customer_api, events
from otphub.http.answers import text
from otphub.http.api_v1 import PREFIX as API_V1
from otphub.http.api_v1 import create_api
from otphub.http.body_timeout import BodyTimeout
from otphub.http.limits import BodyLimit, Limiter, retry_after
from otphub.http.shortcut import Shortcut
from otphub.services import agents, database
from otphub.services.runtime import Runtime
from otphub.workers.agent_poller import run_agent_poller
from otphub.workers.change_feed import run_change_feed
from otphub.workers.outbox import run_outbox
from otphub.workers.sweeper import run_sweeper
from otphub.workers.upstream_follower import run_upstream_follower
from otphub.workers.upstream_poller import run_upstream_poller
from otphub.workers.webhooks import run_webhooks

log = structlog.get_logger("otphub.app")

Worker = Callable[[Runtime], Coroutine[Any, Any, None]]


async def healthz(_request: Request) -> Response:
    """The process is up (liveness)."""
    return text("OK")


async def readyz(request: Request) -> Response:
    """The process can serve: its database answers (readiness)."""
    rt: Runtime = request.app.state.runtime
    if not await database.ready(rt):
        log.warning("not_ready", reason="database unreachable")
        return text("NOT_READY", status_code=503)
    return text("READY")


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus' scrape, for the holder of ``OTPHUB_METRICS_TOKEN`` only: without one
    configured the route does not exist (404, as any unknown path). A token rather than a
    separate address, because ``otphub serve --workers N`` runs N processes on one socket:
    a second listener could be bound by only one of them, while every process can check a
    header."""
    rt: Runtime = request.app.state.runtime
    token = rt.settings.metrics_token
    if not token:
        return text("Not Found", status_code=404)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        # As for keys: only a failed attempt counts, and the right token is never refused.
        limiter: Limiter = request.app.state.limiter
        blocked = limiter.failed_auth(request.client.host if request.client else "-")
        if blocked:
            metrics.RATE_LIMITED.labels("auth_failures").inc()
            refused = text("TOO_MANY_REQUESTS", status_code=429)
            refused.headers["Retry-After"] = retry_after(blocked)
            return refused
        refused = text("Unauthorized", status_code=401)
        refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    try:
        await metrics.refresh_gauges(rt.db, now=rt.clock.now())
    except Exception:
        log.warning("metrics_gauges_unavailable")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def create_app(
    rt: Runtime,
    *,
    manage_runtime: bool = True,
    workers: tuple[Worker, ...] = (
        run_sweeper,
        run_agent_poller,
        run_outbox,
        run_upstream_poller,
        run_upstream_follower,
        run_webhooks,
        run_change_feed,
    ),
) -> Starlette:
    """``manage_runtime``: start the runtime (migrations, catalog) with the app and close it
    after; tests that share one runtime between several apps turn it off."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_runtime:
            await rt.start()
        # Everything built so far (modules, compiled statements, the catalog) lives as long
        # as the process: keep it out of the garbage collector's full passes, which otherwise
        # walk it again and again under load.
        gc.freeze()
        tasks = [asyncio.create_task(worker(rt)) for worker in workers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await agents.close(rt)
            if manage_runtime:
                await rt.close()

    customer_paths = ("/stubs/handler_api.php", "/handler_api.php")
    routes: list[BaseRoute] = [
        *(Route(path, customer_api.endpoint, methods=["GET", "POST"]) for path in customer_paths),
        Route("/agent/api/sms", agent.push_sms, methods=["POST"]),
        # Before API v1's Mount("/api/v1", ...), so that it is matched first.
        Route(
            "/api/v1/activations/{activation_id}/events",
            events.activation_events,
            methods=["GET"],
        ),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # The web console: customers at /, operators at /admin.
        *console.routes(),
    ]
    middleware = [
        # Outermost: its deadline covers every body reader behind it.
        Middleware(BodyTimeout, seconds=rt.settings.body_timeout),
        Middleware(BodyLimit),
        Middleware(
            Shortcut,
            paths=customer_paths,
            endpoint=customer_api.endpoint,
            events=events.activation_events,
        ),
    ]
    limiter = Limiter(auth_failures_per_minute=rt.settings.auth_failures_per_minute)
    # JSON API v1 last: a route above it (the event stream) is matched first.
    routes.append(Mount(API_V1, app=create_api(rt, limiter)))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    # Clients of this protocol do not follow redirects: never answer one.
    app.router.redirect_slashes = False
    app.state.runtime = rt
    app.state.limiter = limiter
    return app
