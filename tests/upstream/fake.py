"""A fake upstream sms-activate service on 127.0.0.1: answers are set per test, and every
request it received is recorded (its parameters as the client sent them)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Answer = str | bytes | Response | Callable[[dict[str, str]], Awaitable[Response | str | bytes]]
PATH = "/stubs/handler_api.php"


class FakeUpstream:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}{PATH}"
        app = Starlette(routes=[Route(PATH, self._endpoint, methods=["GET", "POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return
            threading.Event().wait(0.01)
        raise RuntimeError("fake upstream did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # answers held open are abandoned
        self.thread.join(timeout=10)

    def reset(self) -> None:
        self.answers = {}
        self.requests = []

    def of(self, action: str) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("action") == action]

    async def _endpoint(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.requests.append(params)
        answer: Any = self.answers.get(params.get("action", ""), "BAD_ACTION")
        if callable(answer) and not isinstance(answer, Response):
            answer = await answer(params)
        if isinstance(answer, Response):
            return answer
        return Response(answer, media_type="text/plain")


async def never(_params: dict[str, str]) -> str:
    await asyncio.sleep(5)
    return "late"


def held_open(word: str = "NO_NUMBERS") -> tuple[threading.Event, Answer]:
    """An answer that comes only once the returned event is set (from any thread)."""
    release = threading.Event()

    async def answer(_params: dict[str, str]) -> str:
        await asyncio.to_thread(release.wait, 10)
        return word

    return release, answer
