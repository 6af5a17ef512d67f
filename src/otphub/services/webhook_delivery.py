"""Sending webhook messages (``services/webhooks.py`` writes them to the outbox).

Each message is claimed in a short transaction, sent with no transaction open, and its
outcome recorded in another, as the providers' outbox does (``services/outbox.py``), but
in rounds of its own: a slow or dead receiver holds up neither the providers' messages
nor other URLs (at most ``PER_WEBHOOK`` messages of one URL per round, every URL's side by
side). A 2xx answer delivers it; anything else (another status, a redirect, no answer
within 10 s, an address deliveries may not reach) is a failed attempt, retried on
``domain.webhooks.SCHEDULE``; after the 8th the message is given up (``failed_at``).

Receivers are untrusted: the URL's host is resolved and checked again at every attempt,
and the request goes to the very address checked (the URL's name kept in ``Host`` and, for
https, in the TLS server name, which the certificate is checked against), so that a name
re-pointed between the check and the connection (DNS rebinding) cannot reach inside.
"""

from __future__ import annotations

import asyncio

import httpx
import structlog

from otphub import metrics
from otphub.db import outbox
from otphub.db import webhooks as stored
from otphub.domain import sealing
from otphub.domain import webhooks as rules
from otphub.services.runtime import Runtime
from otphub.services.webhooks import KIND, RESOLVE_TIMEOUT, UnsafeTarget, reachable_addresses

log = structlog.get_logger("otphub.webhooks")

BATCH = 50  # messages per round, side by side
PER_WEBHOOK = 2  # of one URL per round
LOOKS = 4  # due queries per round at most (each leaves out the URLs taken enough of)
TIMEOUT = 10.0  # seconds for a whole exchange: connection, request, answer
MAX_ANSWER = 4096  # bytes of the answer read (and ignored)
# A claimed message is left alone this long by every other process: the lookup and the
# exchange take at most RESOLVE_TIMEOUT + TIMEOUT.
CLAIM_FOR = int(RESOLVE_TIMEOUT + TIMEOUT) + 30
USER_AGENT = "OTPHub-Webhook/1"
REMOVED = "the webhook was removed"


class _Failed(Exception):
    """One attempt failed; the message says why (kept as the message's ``last_error``)."""


def _client(rt: Runtime) -> httpx.AsyncClient:
    client: httpx.AsyncClient | None = rt.extensions.get("webhook_client")
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            follow_redirects=False,
            # No proxy from the environment: the request must go to the address checked.
            trust_env=False,
            # No connection kept for another request: a connection to an address is bound
            # to the name its TLS session was opened for, and two URLs' names may share
            # one address.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )
        rt.extensions["webhook_client"] = client
    return client


async def close(rt: Runtime) -> None:
    """Close this process's connections to receivers (at shutdown)."""
    client: httpx.AsyncClient | None = rt.extensions.pop("webhook_client", None)
    if client is not None:
        await client.aclose()


def _webhook_of(message: outbox.Message) -> int:
    return int(message.payload["webhook_id"])


async def deliver_due(rt: Runtime, *, limit: int = BATCH) -> int:
    """Try due webhook messages once each, side by side, at most ``PER_WEBHOOK`` of one
    URL; returns how many were tried."""
    picked: list[outbox.Message] = []
    seen: set[int] = set()
    taken: dict[int, int] = {}
    full: set[int] = set()
    window = 4 * limit
    async with rt.db.read() as conn:
        now = rt.clock.now()
        for _ in range(LOOKS):
            due = await stored.due_messages(
                conn, now=now, limit=window, skip_webhooks=frozenset(full)
            )
            for message in due:
                webhook_id = _webhook_of(message)
                if message.id in seen or webhook_id in full or len(picked) == limit:
                    continue
                seen.add(message.id)
                picked.append(message)
                taken[webhook_id] = taken.get(webhook_id, 0) + 1
                if taken[webhook_id] == PER_WEBHOOK:
                    full.add(webhook_id)
            if len(due) < window or len(picked) == limit:
                break
    if picked:
        await asyncio.gather(*(_deliver_one(rt, m) for m in picked))
    return len(picked)


async def _deliver_one(rt: Runtime, message: outbox.Message) -> bool:
    webhook_id = _webhook_of(message)
    async with rt.db.write() as conn:
        now = rt.clock.now()
        if not await outbox.claim(
            conn, message_id=message.id, attempts=message.attempts, until=now + CLAIM_FOR
        ):
            return False  # another process took it
        webhook = await stored.get(conn, webhook_id)
        if webhook is None or webhook.removed_at is not None:
            await outbox.failed(conn, message_id=message.id, now=now, error=REMOVED)
            metrics.OUTBOX.labels(KIND, "dropped").inc()
            return False
    attempts = message.attempts + 1
    error: str | None = None
    try:
        await _send(rt, webhook, str(message.payload["body"]).encode())
    except _Failed as failure:
        error = str(failure)
    except Exception as bug:
        log.exception("webhook_delivery_error", message_id=message.id)
        error = f"internal: {type(bug).__name__}"
    async with rt.db.write() as conn:
        now = rt.clock.now()
        if error is None:
            await outbox.delivered(conn, message_id=message.id, now=now)
            outcome = "delivered"
        elif attempts >= rules.MAX_ATTEMPTS or (
            now + rules.wait_before(message.id, attempts + 1)
            > message.created_at + rules.GIVE_UP_AFTER
        ):
            await outbox.failed(conn, message_id=message.id, now=now, error=error)
            outcome = "failed"
        else:
            await outbox.retry_later(
                conn,
                message_id=message.id,
                at=now + rules.wait_before(message.id, attempts + 1),
                error=error,
            )
            outcome = "retried"
    metrics.OUTBOX.labels(KIND, outcome).inc()
    if outcome == "failed":
        log.warning(
            "webhook_failed",
            message_id=message.id,
            webhook_id=webhook_id,
            activation_id=message.activation_id,
            attempts=attempts,
            error=(error or "")[:120],
        )
    return error is None


async def _send(rt: Runtime, webhook: stored.WebhookRow, body: bytes) -> None:
    """One attempt; raises ``_Failed`` unless the receiver answered 2xx."""
    try:
        target = rules.parse_url(webhook.url)
        addresses = await reachable_addresses(rt, target)
    except UnsafeTarget as refused:
        raise _Failed(f"refused: {refused}") from None
    except ValueError as refused:  # a URL stored before a stricter check
        raise _Failed(f"refused: {refused}") from None
    try:
        secret = sealing.unseal(rt.secret, webhook.sealed_secret)
    except sealing.SealError:
        raise _Failed("its secret cannot be opened with this server secret") from None
    timestamp = rt.clock.now()
    url = httpx.URL(target.url)
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        rules.SIGNATURE_HEADER: rules.signature(secret, timestamp, body),
    }
    # The TLS server name (and so the certificate's check) is the URL's, not the address.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    client = _client(rt)
    try:
        async with asyncio.timeout(TIMEOUT):
            status = await _post_to_first(client, url, addresses, headers, body, extensions)
    except TimeoutError:
        raise _Failed(f"no answer within {TIMEOUT:g} s") from None
    except httpx.HTTPError as failed:
        raise _Failed(f"transport: {type(failed).__name__}") from None
    if 300 <= status < 400:
        raise _Failed(f"HTTP {status} (redirects are not followed)")
    if not 200 <= status < 300:
        raise _Failed(f"HTTP {status}")


async def _post_to_first(
    client: httpx.AsyncClient,
    url: httpx.URL,
    addresses: list[str],
    headers: dict[str, str],
    body: bytes,
    extensions: dict[str, str],
) -> int:
    """POST to the first of the checked addresses that accepts a connection; the status."""
    for index, address in enumerate(addresses):
        try:
            return await _post(client, url.copy_with(host=address), headers, body, extensions)
        except httpx.ConnectError:
            if index == len(addresses) - 1:
                raise
    raise httpx.ConnectError("no address")  # not reached: addresses is never empty


async def _post(
    client: httpx.AsyncClient,
    url: httpx.URL,
    headers: dict[str, str],
    body: bytes,
    extensions: dict[str, str],
) -> int:
    async with client.stream(
        "POST",
        url,
        content=body,
        headers=headers,
        extensions=extensions,
        timeout=httpx.Timeout(TIMEOUT),
    ) as response:
        # Read a little of the answer (and ignore it): no more, whatever it declares.
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received >= MAX_ANSWER:
                break
        return response.status_code
