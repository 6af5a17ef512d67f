"""A small SMSHub-protocol agent on 127.0.0.1 for the tests: a Starlette app served by
uvicorn in its own thread and event loop, configurable per test (stock, numbers to hand
out, NO_NUMBERS, garbage, hanging, down) and recording every request it received."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Behaviour:
    # GET_SERVICES answer: country -> operator -> service -> count
    stock: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # GET_NUMBER: numbers handed out in order (phone, activationId); empty: NO_NUMBERS
    numbers: list[tuple[int, int]] = field(default_factory=list)
    # A raw answer body for every action (garbage); None: the protocol's answer
    raw: bytes | None = None
    raw_for: set[str] = field(default_factory=set)  # actions that get ``raw`` (empty: all)
    hang: set[str] = field(default_factory=set)  # actions answered only once released
    # FINISH_ACTIVATION answers ERROR this many times before SUCCESS
    finish_failures: int = 0
    status_code: int = 200


class FakeAgent:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.requests: list[dict[str, Any]] = []
        self.received = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.release_event: asyncio.Event | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/agent"
        app = Starlette(routes=[Route("/agent", self._handle, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(target=self._run, name="fake-agent", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.release_event = asyncio.Event()
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> FakeAgent:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("fake agent did not start")

    def stop(self) -> None:
        self.release()
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def down(self) -> None:
        """Refuse connections from now on (the port is closed)."""
        self.stop()

    def release(self) -> None:
        """Answer every hanging request."""
        if self.release_event is not None:
            self.loop.call_soon_threadsafe(self.release_event.set)

    def of(self, action: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("action") == action]

    def wait_for(self, action: str, count: int = 1, timeout: float = 10) -> None:
        with self.received:
            if not self.received.wait_for(lambda: len(self.of(action)) >= count, timeout):
                raise AssertionError(f"the agent did not receive {count} {action}")

    async def _handle(self, request: Request) -> Response:
        body = json.loads(await request.body())
        with self.received:
            self.requests.append(body)
            self.received.notify_all()
        action = body.get("action")
        b = self.behaviour
        if action in b.hang:
            assert self.release_event is not None
            await self.release_event.wait()
        if b.raw is not None and (not b.raw_for or action in b.raw_for):
            return Response(b.raw, status_code=b.status_code, media_type="application/json")
        if action == "GET_SERVICES":
            answer: dict[str, Any] = {
                "countryList": [
                    {"country": country, "operatorMap": operators}
                    for country, operators in b.stock.items()
                ],
                "status": "SUCCESS",
            }
        elif action == "GET_NUMBER":
            if not b.numbers:
                answer = {"status": "NO_NUMBERS"}
            else:
                phone, activation_id = b.numbers.pop(0)
                answer = {"number": phone, "activationId": activation_id, "status": "SUCCESS"}
        elif action == "FINISH_ACTIVATION":
            if b.finish_failures > 0:
                b.finish_failures -= 1
                answer = {"status": "ERROR", "error": "try later"}
            else:
                answer = {"status": "SUCCESS"}
        else:
            answer = {"status": "ERROR", "error": "unknown action"}
        return Response(
            json.dumps(answer).encode(), status_code=b.status_code, media_type="application/json"
        )
