"""A deadline for a request's body: slow clients get 408, not a connection held forever.

A client that announces a body and then sends it slowly, or never (``Content-Length: 1000``
and one byte), would hold its connection and a task of the server until it gives up: the
HTTP server waits for the body as long as the application does. Once the headers are in,
the whole body must arrive within the deadline; otherwise the answer is 408 with
``Connection: close`` and whoever was reading the body sees the client gone
(``http.disconnect``), which every reader already handles (``BodyLimit`` stops,
Starlette raises ``ClientDisconnect``). Nothing is raised through the application, so no
``except Exception`` on the way can turn a slow client into a 5xx and a logged traceback.

Pure ASGI around ``receive``, outermost, so that it covers every body reader behind it:
``BodyLimit`` (which buffers every body before the endpoints see it), the customer API's
shortcut and the agent endpoint. Requests without a body (status polls) pass untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from otphub.http.limits import send_refusal

ASGIApp = Any
Message = dict[str, Any]

_DISCONNECT: Message = {"type": "http.disconnect"}


class BodyTimeout:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.seconds <= 0 or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_complete = False
        timed_out = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal body_complete, timed_out
            if timed_out:
                return _DISCONNECT
            if body_complete:
                # After the body, ``receive`` only reports a disconnect: no deadline.
                message: Message = await receive()
                return message
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                if not response_started:
                    await send_refusal(
                        send,
                        scope,
                        status=408,
                        word="REQUEST_TIMEOUT",
                        agent_error="body not received in time",
                    )
                return _DISCONNECT
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if timed_out:
                return  # the 408 is the answer; the client is being let go
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)


def _has_body(scope: dict[str, Any]) -> bool:
    """Whether the request announces a body: a non-zero Content-Length (or an unreadable
    one) or a Transfer-Encoding (chunks of unknown total)."""
    announced = False
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            announced = value.strip() != b"0"
    return announced
