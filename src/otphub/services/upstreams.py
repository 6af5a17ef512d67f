"""Upstream providers: another sms-activate-compatible service OTPHub buys from and resells
(the reseller business). This module is the client of its customer protocol
(spec/customer-api.md) at the provider's ``endpoint_url`` (the full handler URL), with
``api_key`` = OTPHub's key there (``RemoteProvider.secret``).

Every call is outside any database transaction, bounded in time (connect, read, and a
total deadline), in size (the answer is streamed and the call refused past a cap), and in
concurrency per provider (a slow upstream only ever slows its own calls). Anything but the
protocol's words is a ``SupplierFailure``; the upstream's words never reach OTPHub's
customers, who only ever see OTPHub's protocol (a purchase that fails here answers
``NO_NUMBERS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from otphub.db import outbox
from otphub.db import upstreams as upstream_db
from otphub.domain import upstream_protocol as protocol
from otphub.domain.supply import (
    NoRemoteNumbers,
    NumberRequest,
    RemoteNumber,
    RemoteProvider,
    SupplierFailure,
)
from otphub.domain.upstream_protocol import Delivery, Garbage, RemoteStatus
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.upstreams")


@dataclass(frozen=True, slots=True)
class Limits:
    """Time, size and concurrency bounds of the calls to one upstream."""

    connect_seconds: float = 5.0
    # Between two reads of the answer, and for the whole call (a trickling upstream hits
    # the total deadline).
    read_seconds: float = 10.0
    total_seconds: float = 15.0
    # getPrices of a whole catalog: ~1 MB at sms-activate; far more is not a price list.
    prices_bytes: int = 8 * 1024 * 1024
    prices_seconds: float = 60.0
    # Every other answer is a word and a few fields (a code may be a whole SMS).
    answer_bytes: int = 16 * 1024
    # Calls in flight to one upstream from one process (purchases, setStatus, polls); a
    # purchase finding them all busy fails at once and tries the next offer.
    calls_in_flight: int = 8
    # getStatus long-polls of the follower, apart so that they never starve purchases.
    follows_in_flight: int = 64
    # getStatus&wait=N (OTPHub's extension): an upstream without it ignores the parameter
    # and answers at once.
    status_wait_seconds: int = 20


DEFAULT_LIMITS = Limits()
# The outbox messages this module delivers (written by the lifecycle's hook).
STATUS_KIND = "upstream_status"
_LIMITS = "upstream_limits"
_SLOTS = "upstream_slots"


def limits(rt: Runtime) -> Limits:
    """The bounds in force (tests put shorter ones in ``rt.extensions``)."""
    found = rt.extensions.get(_LIMITS)
    return found if isinstance(found, Limits) else DEFAULT_LIMITS


def _semaphore(rt: Runtime, provider_id: int, kind: str) -> asyncio.Semaphore:
    slots: dict[tuple[int, str], asyncio.Semaphore] = rt.extensions.setdefault(_SLOTS, {})
    found = slots.get((provider_id, kind))
    if found is None:
        bound = limits(rt)
        size = bound.follows_in_flight if kind == "follow" else bound.calls_in_flight
        found = slots[(provider_id, kind)] = asyncio.Semaphore(size)
    return found


@contextlib.asynccontextmanager
async def _slot(
    rt: Runtime, provider: RemoteProvider, *, kind: str = "call", wait: float = 0.0
) -> AsyncIterator[None]:
    """One of the provider's slots, or ``SupplierFailure`` if none frees up within
    ``wait`` seconds (0: fail at once)."""
    semaphore = _semaphore(rt, provider.id, kind)
    if semaphore.locked() and wait <= 0:
        raise SupplierFailure("too many calls in flight to this upstream")
    try:
        async with asyncio.timeout(wait if wait > 0 else None):
            await semaphore.acquire()
    except TimeoutError as exc:
        raise SupplierFailure("too many calls in flight to this upstream") from exc
    try:
        yield
    finally:
        semaphore.release()


async def _call(
    rt: Runtime,
    provider: RemoteProvider,
    action: str,
    params: dict[str, str],
    *,
    max_bytes: int | None = None,
    total_seconds: float | None = None,
    read_seconds: float | None = None,
) -> bytes:
    """One request to the upstream's handler; its body, or ``SupplierFailure``. The key
    travels in the query string as the protocol wants; no error message here ever
    carries the URL (httpx's own messages would)."""
    bound = limits(rt)
    cap = max_bytes if max_bytes is not None else bound.answer_bytes
    timeout = httpx.Timeout(
        connect=bound.connect_seconds,
        read=read_seconds if read_seconds is not None else bound.read_seconds,
        write=bound.connect_seconds,
        pool=bound.connect_seconds,
    )
    query = {"api_key": provider.secret, "action": action, **params}
    try:
        async with (
            asyncio.timeout(total_seconds if total_seconds is not None else bound.total_seconds),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", provider.endpoint_url, params=query) as response,
        ):
            if response.status_code != 200:
                raise SupplierFailure(f"{action}: HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise SupplierFailure(f"{action}: answer larger than {cap} bytes")
            return bytes(body)
    except TimeoutError as exc:
        raise SupplierFailure(f"{action}: no answer in time") from exc
    except httpx.TimeoutException as exc:
        raise SupplierFailure(f"{action}: timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise SupplierFailure(f"{action}: {type(exc).__name__}") from exc


def _text(action: str, body: bytes) -> str:
    """A text answer; whitespace around it (a trailing newline some servers add) is not
    part of the protocol's word."""
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise SupplierFailure(f"{action}: answer is not UTF-8") from exc


# ---------------------------------------------------------------- the protocol's actions


async def get_balance(rt: Runtime, provider: RemoteProvider, *, wait: float = 0.0) -> int:
    """OTPHub's balance at the upstream, minor units."""
    async with _slot(rt, provider, wait=wait):
        body = await _call(rt, provider, "getBalance", {})
    try:
        return protocol.parse_balance(_text("getBalance", body), rt.money)
    except Garbage as exc:
        raise SupplierFailure(str(exc)) from exc


async def get_prices(
    rt: Runtime, provider: RemoteProvider, *, wait: float = 0.0
) -> protocol.Prices:
    """The upstream's stock and costs for every (country, service) OTPHub's catalog knows."""
    bound = limits(rt)
    async with _slot(rt, provider, wait=wait):
        body = await _call(
            rt,
            provider,
            "getPrices",
            {},
            max_bytes=bound.prices_bytes,
            total_seconds=bound.prices_seconds,
        )
    try:
        return protocol.parse_prices(
            body,
            rt.money,
            countries=rt.catalog.countries.keys(),
            services=rt.catalog.services.keys(),
        )
    except Garbage as exc:
        raise SupplierFailure(str(exc)) from exc


async def get_number(rt: Runtime, provider: RemoteProvider, request: NumberRequest) -> RemoteNumber:
    """Buy a number at the upstream: getNumber with maxPrice = ``request.payout``, the cost
    the stock was priced with, so that a price rise there never makes a sale at a loss
    (it answers WRONG_MAX_PRICE: no number). Raises ``NoRemoteNumbers`` for no number,
    ``SupplierFailure`` for anything else."""
    params = {
        "service": request.service,
        "country": str(request.country_id),
        # Written as OTPHub itself reads maxPrice: the currency's decimals, a point.
        "maxPrice": rt.money.format(request.payout),
    }
    if request.operator != "any":
        params["operator"] = request.operator
    if request.excluded_prefixes:
        params["phoneException"] = ",".join(request.excluded_prefixes)
    async with _slot(rt, provider):
        body = await _call(rt, provider, "getNumber", params)
    try:
        answer = protocol.parse_number(_text("getNumber", body))
    except Garbage as exc:
        raise SupplierFailure(str(exc)) from exc
    if answer is protocol.NumberAnswer.NO_NUMBERS:
        raise NoRemoteNumbers()
    if answer is protocol.NumberAnswer.NO_BALANCE:
        # Its balance is lower than the poll saw: read it now so that its stock stops
        # being offered before the next poll.
        await refresh_balance(rt, provider)
        raise SupplierFailure("getNumber: NO_BALANCE at the upstream")
    assert isinstance(answer, protocol.Bought)
    prefix = rt.catalog.countries[request.country_id].phone_prefix
    if not answer.phone.startswith(prefix) or answer.phone.startswith(request.excluded_prefixes):
        # Not what was asked for: give it back (through the outbox, which retries until
        # the upstream's early-cancel window allows it) and try the next offer.
        await give_back(rt, provider_id=provider.id, remote_id=answer.remote_id)
        raise SupplierFailure("getNumber: a number of another country or an excluded prefix")
    # One more number bought: if the balance there cannot pay for another, the stock must
    # stop being offered now, not at the next poll.
    await refresh_balance(rt, provider)
    return RemoteNumber(remote_id=answer.remote_id, phone=answer.phone, operator="any")


async def give_back(rt: Runtime, *, provider_id: int, remote_id: str) -> None:
    """Cancel at the upstream a number OTPHub will not sell: setStatus 8 through the
    outbox, retried until the upstream's early-cancel window lets it through."""
    async with rt.db.write() as conn:
        await outbox.enqueue(
            conn,
            is_sqlite=rt.db.is_sqlite,
            kind=STATUS_KIND,
            dedupe_key=f"{STATUS_KIND}:give_back:{provider_id}:{remote_id}",
            payload={"id": remote_id, "status": 8},
            now=rt.clock.now(),
            provider_id=provider_id,
        )


async def refresh_balance(rt: Runtime, provider: RemoteProvider) -> int | None:
    """Re-read OTPHub's balance at the upstream and keep it; ``None`` when it cannot be
    read now (the next poll will)."""
    try:
        balance = await get_balance(rt, provider, wait=limits(rt).connect_seconds)
    except SupplierFailure as exc:
        log.info("upstream_balance_unread", provider_id=provider.id, reason=str(exc))
        return None
    async with rt.db.write() as conn:
        await upstream_db.set_balance(conn, provider.id, balance=balance)
    return balance


async def get_status(
    rt: Runtime, provider: RemoteProvider, *, remote_id: str, wait: int = 0
) -> RemoteStatus:
    """getStatus of an upstream activation; with ``wait`` > 0, OTPHub's long-poll
    extension (``wait=N``): the answer comes when the status changes or after N seconds.
    An upstream without it ignores the parameter and answers at once."""
    params = {"id": remote_id}
    if wait > 0:
        params["wait"] = str(wait)
    bound = limits(rt)
    async with _slot(rt, provider, kind="follow", wait=bound.total_seconds):
        body = await _call(
            rt,
            provider,
            "getStatus",
            params,
            read_seconds=bound.read_seconds + wait,
            total_seconds=bound.total_seconds + wait,
        )
    try:
        return protocol.parse_status(_text("getStatus", body))
    except Garbage as exc:
        raise SupplierFailure(str(exc)) from exc


async def ended_code(rt: Runtime, provider: RemoteProvider, *, remote_id: str) -> str | None:
    """The code of an activation the upstream ended, if it had one (getStatusV2)."""
    async with _slot(rt, provider, kind="follow", wait=limits(rt).total_seconds):
        body = await _call(rt, provider, "getStatusV2", {"id": remote_id})
    try:
        return protocol.parse_ended_code(body)
    except Garbage as exc:
        raise SupplierFailure(str(exc)) from exc


def _status_message(payload: dict[str, Any]) -> tuple[str, int]:
    remote_id, status = payload.get("id"), payload.get("status")
    if isinstance(remote_id, int) and not isinstance(remote_id, bool):
        remote_id = str(remote_id)
    if (
        not isinstance(remote_id, str)
        or not remote_id.isascii()
        or not remote_id.isdigit()
        or not isinstance(status, int)
        or isinstance(status, bool)
        or status not in protocol.STATUS_ANSWERS
    ):
        raise ValueError(f"not an upstream_status payload: {payload!r}")
    return remote_id, status


async def set_status(
    rt: Runtime, provider: RemoteProvider, *, remote_id: str, status: int
) -> Delivery:
    """setStatus at the upstream: what its answer means for the message that asked it."""
    async with _slot(rt, provider, wait=limits(rt).total_seconds):
        body = await _call(rt, provider, "setStatus", {"id": remote_id, "status": str(status)})
    try:
        return protocol.parse_set_status(_text("setStatus", body), status)
    except Garbage as exc:
        raise SupplierFailure(str(exc)) from exc


async def deliver_status(rt: Runtime, provider: RemoteProvider, payload: dict[str, Any]) -> None:
    """Deliver one outbox message of kind ``upstream_status`` (``{"id": <upstream
    activation id>, "status": 1|3|6|8}``): returns when it is done (acknowledged, or moot
    because the activation has ended there: the upstream's "already cancelled" answers),
    raises ``SupplierFailure`` to be retried later (EARLY_CANCEL_DENIED, a failure)."""
    try:
        remote_id, status = _status_message(payload)
    except ValueError as exc:
        # Retrying cannot make a malformed message deliverable; say so loudly, once.
        log.error("upstream_status_malformed", provider_id=provider.id, error=str(exc))
        return
    outcome = await set_status(rt, provider, remote_id=remote_id, status=status)
    if outcome is Delivery.LATER:
        raise SupplierFailure(f"setStatus {status}: EARLY_CANCEL_DENIED, later")
    if outcome is Delivery.MOOT:
        log.info("upstream_status_moot", provider_id=provider.id, status=status)


def sms_id_of_code(remote_id: str, code: str) -> int:
    """The ``provider_sms_id`` of a code seen at an upstream: stable for the same code of
    the same activation (a repeat is harmless, however many followers see it), distinct
    for another code (after setStatus 3, a new code is a new SMS). 63 bits of SHA-256."""
    digest = hashlib.sha256(f"{remote_id}\x00{code}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
