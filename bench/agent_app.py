#!/usr/bin/env python3
"""A fast local SMSHub agent for the benchmark's purchase scenario through an agent: it
has stock of one (country, service), hands out a new number at every GET_NUMBER and
answers SUCCESS to every FINISH_ACTIVATION. ``/ready`` answers once it listens.

``python bench/agent_app.py --port P --country russia --service tg``
"""

from __future__ import annotations

import argparse
import itertools
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build(country: str, service: str) -> Starlette:
    serial = itertools.count(1)
    services = json.dumps(
        {
            "countryList": [{"country": country, "operatorMap": {"any": {service: 100000}}}],
            "status": "SUCCESS",
        }
    ).encode()
    success = b'{"status":"SUCCESS"}'

    async def agent(request: Request) -> Response:
        action = json.loads(await request.body()).get("action")
        if action == "GET_SERVICES":
            body = services
        elif action == "GET_NUMBER":
            n = next(serial)
            body = json.dumps(
                {"number": 79_300_000_000 + n, "activationId": n, "status": "SUCCESS"}
            ).encode()
        else:
            body = success
        return Response(body, media_type="application/json")

    async def ready(_request: Request) -> Response:
        return Response(b"OK")

    return Starlette(routes=[Route("/agent", agent, methods=["POST"]), Route("/ready", ready)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--country", default="russia")
    parser.add_argument("--service", default="tg")
    args = parser.parse_args()
    uvicorn.run(
        build(args.country, args.service),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
