"""The ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otphub.http import agent, customer_api
from otphub.http.answers import text
from otphub.services.runtime import Runtime
from otphub.workers.sweeper import run_sweeper

Worker = Callable[[Runtime], Coroutine[Any, Any, None]]


async def healthz(_request: Request) -> Response:
    return text("OK")


def create_app(
    rt: Runtime,
    *,
    manage_runtime: bool = True,
    workers: tuple[Worker, ...] = (run_sweeper,),
) -> Starlette:
    """``manage_runtime``: start the runtime (migrations, catalog) with the app and close it
    after; tests that share one runtime between several apps turn it off."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_runtime:
            await rt.start()
        tasks = [asyncio.create_task(worker(rt)) for worker in workers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if manage_runtime:
                await rt.close()

    routes = [
        Route("/stubs/handler_api.php", customer_api.endpoint, methods=["GET", "POST"]),
        Route("/handler_api.php", customer_api.endpoint, methods=["GET", "POST"]),
        Route("/agent/api/sms", agent.push_sms, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    # Clients of this protocol do not follow redirects: never answer one.
    app.router.redirect_slashes = False
    app.state.runtime = rt
    return app
