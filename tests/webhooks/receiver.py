"""A webhook receiver on 127.0.0.1 for the tests: a Starlette app served by uvicorn in its
own thread and event loop, recording every request, answering each path with the statuses
a test queued (then 200)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


def verify(secret: str, header: str, body: bytes) -> int:
    """Check ``X-OTPHub-Signature`` as a customer would (the README's recipe); returns its
    timestamp, raises ``AssertionError`` if it does not match."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "bad signature"
    return int(fields["t"])


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: dict[str, list[int]] = {}
        self.received = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(target=self._run, name="webhook-receiver", daemon=True)

    def url(self, path: str = "hook") -> str:
        return f"{self.base}/{path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> Receiver:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with these statuses, in order."""
        self.statuses.setdefault(path, []).extend(statuses)

    def at(self, path: str = "hook") -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, path: str = "hook", timeout: float = 10) -> None:
        with self.received:
            if not self.received.wait_for(lambda: len(self.at(path)) >= count, timeout):
                raise AssertionError(f"the receiver did not get {count} requests at /{path}")

    async def _handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        body = await request.body()
        with self.received:
            self.requests.append(
                Received(path=path, headers=dict(request.headers.items()), body=body)
            )
            self.received.notify_all()
        queued = self.statuses.get(path)
        status = queued.pop(0) if queued else 200
        headers = {"Location": "http://127.0.0.1:1/elsewhere"} if 300 <= status < 400 else {}
        return Response(b"thanks" * 2000, status_code=status, headers=headers)
