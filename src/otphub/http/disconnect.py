"""Noticing that a client went away while its request waits (``wait=``, event streams).

uvicorn tells an application that its client disconnected only through ``receive()``
(its ASGI spec version is 2.3: a ``send`` to a closed connection is silently dropped). A
waiting request that never calls ``receive`` would wait out its whole time for nobody,
holding a task and a slot under ``OTPHUB_MAX_CONNECTIONS`` (a client that gives up a
``wait=60`` after a second held it for 59 more). So each waiting request keeps one small
task reading ``receive`` until the disconnect; its waits end on whichever comes first. One
task, not Starlette's StreamingResponse task group (two tasks, a cancel scope): a tenth of
the memory, and a waiting request's cost is mostly its connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

Receive = Any  # starlette.types.Receive: an awaitable callable returning an ASGI message


async def _until_disconnect(receive: Receive) -> None:
    # The request's body was read before the wait (read_params), so what comes now is an
    # empty http.request (a GET's) at most, then http.disconnect when the client goes. A
    # server that fails here counts as gone: the wait ends with the answer as it is now.
    try:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
    except Exception:
        return


def client_gone(receive: Receive) -> asyncio.Future[None]:
    """A future done when the client disconnects; cancel it once the answer is sent."""
    return asyncio.ensure_future(_until_disconnect(receive))
