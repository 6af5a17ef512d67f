"""The hub side of the SMSHub agent protocol: OTPHub calls an agent's URL (GET_SERVICES,
GET_NUMBER, FINISH_ACTIVATION).

An agent is untrusted: every call has a deadline (connect, read and the whole exchange,
``OTPHUB_AGENT_TIMEOUT_SECONDS``), its answer is read by streaming up to a cap and no
further, and its fields are checked strictly (counts, ``number`` and ``activationId`` are
JSON integers: not strings, booleans or floats; ``status`` is one of the protocol's words).
Anything else is a ``SupplierFailure`` with a short reason. Each provider has at most
``MAX_IN_FLIGHT`` calls in flight per process; when it is full a call fails at once instead
of queueing, so a slow agent never delays purchases from other providers.

No database transaction is ever open while these run (the callers see to it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import structlog

from otphub.domain.supply import (
    NoRemoteNumbers,
    NumberRequest,
    RemoteNumber,
    RemoteProvider,
    SupplierFailure,
)
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.agents")

MAX_IN_FLIGHT = 8  # calls per provider per process
MAX_SERVICES_ANSWER = 1024 * 1024  # GET_SERVICES: every country x operator x service
MAX_ANSWER = 16 * 1024  # GET_NUMBER, FINISH_ACTIVATION
MAX_COUNT = 1_000_000_000  # a count beyond this is garbage (and beyond an INTEGER column)
STATUSES = frozenset({"SUCCESS", "ERROR", "NO_NUMBERS"})

# FINISH_ACTIVATION statuses (spec): never offer again for this service, sold, cancelled,
# refunded.
FINISH_NOT_AGAIN = 1
FINISH_SOLD = 3
FINISH_CANCELLED = 4
FINISH_REFUNDED = 5


class Busy(SupplierFailure):
    """This process has ``MAX_IN_FLIGHT`` calls to the provider open already. Not the
    agent's fault: it is not marked down for it."""


class Garbage(SupplierFailure):
    """The agent answered something the protocol does not allow."""


@dataclass
class _Connections:
    client: httpx.AsyncClient
    in_flight: dict[int, asyncio.Semaphore]


def _connections(rt: Runtime) -> _Connections:
    found: _Connections | None = rt.extensions.get("agent_connections")
    if found is None or found.client.is_closed:
        found = _Connections(
            client=httpx.AsyncClient(
                headers={"Accept-Encoding": "gzip", "Content-Type": "application/json"},
                follow_redirects=False,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            ),
            in_flight={},
        )
        rt.extensions["agent_connections"] = found
    return found


async def close(rt: Runtime) -> None:
    """Close this process's connections to agents (at shutdown)."""
    found: _Connections | None = rt.extensions.pop("agent_connections", None)
    if found is not None:
        await found.client.aclose()


def _strict_int(text: str) -> int:
    # A JSON integer of more than 19 digits is no count, number or id of this protocol;
    # refusing it before int() also spares the CPU of converting a huge one.
    if len(text.lstrip("-")) > 19:
        raise Garbage("an integer out of range")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise Garbage(f"{name} is not JSON")


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        # Floats are kept as Decimal so that a float where an integer belongs is seen as
        # one (1.0 is not 1 here); NaN and Infinity are not JSON.
        body = json.loads(
            raw,
            parse_int=_strict_int,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
        )
    except Garbage:
        raise
    except (ValueError, RecursionError):
        raise Garbage("the answer is not JSON") from None
    if not isinstance(body, dict):
        raise Garbage("the answer is not a JSON object")
    status = body.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise Garbage("the answer has no protocol status")
    return body


def _integer(body: dict[str, Any], name: str, *, minimum: int = 0) -> int:
    value = body.get(name)
    if type(value) is not int or value < minimum:
        raise Garbage(f"{name} is not a JSON integer")
    return value


async def call(
    rt: Runtime,
    provider: RemoteProvider,
    action: dict[str, Any],
    *,
    max_answer: int = MAX_ANSWER,
    wait_for_a_slot: bool = False,
) -> dict[str, Any]:
    """POST one action (the provider's key added) and return its checked JSON answer.
    ``ERROR`` answers raise ``SupplierFailure`` with the agent's description, cut short."""
    connections = _connections(rt)
    slots = connections.in_flight.setdefault(provider.id, asyncio.Semaphore(MAX_IN_FLIGHT))
    if slots.locked() and not wait_for_a_slot:
        raise Busy(f"{MAX_IN_FLIGHT} calls to this agent are in flight already")
    body = json.dumps({**action, "key": provider.secret}, separators=(",", ":")).encode()
    deadline = rt.settings.agent_timeout_seconds
    async with slots:
        try:
            async with asyncio.timeout(deadline):
                raw = await _post(
                    connections.client, provider.endpoint_url, body, max_answer, deadline
                )
        except TimeoutError:
            raise SupplierFailure(f"no answer within {deadline:g} s") from None
        except httpx.HTTPError as failed:
            raise SupplierFailure(f"transport: {type(failed).__name__}") from None
    answer = _decode(raw)
    if answer["status"] == "ERROR":
        error = answer.get("error")
        raise SupplierFailure(f"agent error: {error if isinstance(error, str) else '?'}"[:120])
    return answer


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, max_answer: int, deadline: float
) -> bytes:
    # Connect, write, read and the pool each within the deadline; the whole exchange too
    # (the caller's asyncio.timeout: a trickling answer cannot stretch it).
    async with client.stream(
        "POST", url, content=body, timeout=httpx.Timeout(deadline)
    ) as response:
        if response.status_code != 200:
            raise SupplierFailure(f"HTTP {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_answer:
            raise Garbage(f"answer larger than {max_answer} bytes")
        received = bytearray()
        # Decompressed bytes: a small gzip bomb stops here too.
        async for chunk in response.aiter_bytes():
            received += chunk
            if len(received) > max_answer:
                raise Garbage(f"answer larger than {max_answer} bytes")
        return bytes(received)


# ---------------------------------------------------------------- GET_SERVICES


@dataclass(frozen=True, slots=True)
class ServiceCount:
    """One count of GET_SERVICES, by the agent's names (mapping to the catalog is the
    caller's: unknown names are skipped there, not refused)."""

    country: str
    operator: str
    service: str
    count: int


async def get_services(rt: Runtime, provider: RemoteProvider) -> list[ServiceCount]:
    answer = await call(
        rt,
        provider,
        {"action": "GET_SERVICES"},
        max_answer=MAX_SERVICES_ANSWER,
        wait_for_a_slot=True,
    )
    if answer["status"] != "SUCCESS":
        raise Garbage("GET_SERVICES answered " + str(answer["status"]))
    countries = answer.get("countryList")
    if not isinstance(countries, list):
        raise Garbage("countryList is not a list")
    found: list[ServiceCount] = []
    for entry in countries:
        if not isinstance(entry, dict):
            raise Garbage("a countryList entry is not an object")
        country, operators = entry.get("country"), entry.get("operatorMap")
        if not isinstance(country, str) or not isinstance(operators, dict):
            raise Garbage("a countryList entry lacks country or operatorMap")
        for operator, services in operators.items():
            if not isinstance(services, dict):
                raise Garbage("an operatorMap entry is not an object")
            for service, count in services.items():
                if type(count) is not int or not 0 <= count <= MAX_COUNT:
                    raise Garbage(f"the count of {service!r} is not a JSON integer")
                found.append(ServiceCount(country, operator, service, count))
    return found


# ---------------------------------------------------------------- GET_NUMBER


def sum_of(rt: Runtime, payout: int) -> int | float:
    """``sum``: the payout in currency units as a JSON number, an integer when whole
    (``0.4`` for 40 cents, ``1`` for 100)."""
    whole, part = divmod(payout, rt.money.scale)
    return whole if part == 0 else rt.money.json_number(payout)


def number_request(
    rt: Runtime, provider: RemoteProvider, request: NumberRequest, country: str
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action": "GET_NUMBER",
        "country": country,
        "operator": request.operator,
        "service": request.service,
        "sum": sum_of(rt, request.payout),
        "currency": rt.money.numeric,
    }
    if request.excluded_prefixes:
        action["exceptionPhoneSet"] = list(request.excluded_prefixes)
    return action


async def get_number(
    rt: Runtime, provider: RemoteProvider, request: NumberRequest, *, country: str
) -> RemoteNumber:
    answer = await call(rt, provider, number_request(rt, provider, request, country))
    if answer["status"] == "NO_NUMBERS":
        raise NoRemoteNumbers()
    number = _integer(answer, "number", minimum=1)
    activation_id = _integer(answer, "activationId")
    phone = str(number)
    if not 6 <= len(phone) <= 16:
        raise Garbage("number is no phone number")
    return RemoteNumber(remote_id=str(activation_id), phone=phone, operator=request.operator)


# ---------------------------------------------------------------- FINISH_ACTIVATION


async def finish_activation(rt: Runtime, provider: RemoteProvider, payload: dict[str, Any]) -> None:
    """Deliver one outbox message ``{"activationId": N, "status": S}``: returns once the
    agent answered SUCCESS; raises ``SupplierFailure`` (retried later) otherwise."""
    activation_id, status = payload.get("activationId"), payload.get("status")
    if type(activation_id) is not int or type(status) is not int:
        raise SupplierFailure("malformed outbox message")
    answer = await call(
        rt,
        provider,
        {"action": "FINISH_ACTIVATION", "activationId": activation_id, "status": status},
        wait_for_a_slot=True,
    )
    if answer["status"] != "SUCCESS":
        raise Garbage("FINISH_ACTIVATION answered " + str(answer["status"]))
