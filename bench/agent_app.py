"""A fast SMSHub-protocol agent for the benchmark's purchase-through-an-agent scenario.

It plays a SIM bank with an endless supply: GET_SERVICES offers ``--count`` numbers of every
``--services`` code in ``--country`` (operator ``any``), GET_NUMBER hands out a new number
each time (``--prefix`` followed by a counter, so no number is ever handed out twice), and
FINISH_ACTIVATION answers SUCCESS. A wrong key is ``ERROR``, as the protocol says. It counts
what it received (``GET /stats``) so the benchmark can check that every purchase asked it and
every cancel reached it.

Run: ``python bench/agent_app.py --port P --key KEY``. Written from the protocol
(../shared/spec/supplier-api.md), not from OTPHub's hub code; served by uvicorn like OTPHub.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from typing import Any

import uvicorn

Scope = dict[str, Any]


def create_app(*, key: str, country: str, services: list[str], count: int, prefix: str) -> Any:
    numbers = itertools.count(1)
    received: Counter[str] = Counter()
    services_answer = json.dumps(
        {
            "countryList": [
                {"country": country, "operatorMap": {"any": dict.fromkeys(services, count)}}
            ],
            "status": "SUCCESS",
        }
    ).encode()

    async def answer(send: Any, body: bytes, status: int = 200) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/stats":
            await answer(send, json.dumps(received).encode())
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            request = json.loads(b"".join(chunks))
        except ValueError:
            await answer(send, b'{"status":"ERROR","error":"not JSON"}', 400)
            return
        if not isinstance(request, dict) or request.get("key") != key:
            await answer(send, b'{"status":"ERROR","error":"bad key"}', 401)
            return
        action = str(request.get("action"))
        received[action] += 1
        if action == "GET_SERVICES":
            await answer(send, services_answer)
        elif action == "GET_NUMBER":
            activation = next(numbers)
            phone = int(f"{prefix}{activation:0{11 - len(prefix)}d}")
            body = {"number": phone, "activationId": activation, "status": "SUCCESS"}
            await answer(send, json.dumps(body).encode())
        elif action == "FINISH_ACTIVATION":
            await answer(send, b'{"status":"SUCCESS"}')
        else:
            await answer(send, b'{"status":"ERROR","error":"unknown action"}', 400)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--country", default="russia")
    parser.add_argument("--services", default="tg,wa,vk,go")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--prefix", default="7955", help="digits every number starts with")
    args = parser.parse_args()
    app = create_app(
        key=args.key,
        country=args.country,
        services=args.services.split(","),
        count=args.count,
        prefix=args.prefix,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
