"""Customers' webhooks: up to 3 URLs per customer, each with its own signing secret (shown
once, kept sealed under the server secret), and one outbox message per URL for each SMS
that reaches a live activation of the customer, written in the transaction that stores
the SMS (``services/webhook_delivery.py`` sends them)."""

from __future__ import annotations

import asyncio
import functools
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from otphub.db import customers, outbox
from otphub.db import webhooks as stored
from otphub.db.engine import Conn
from otphub.domain import errors, sealing
from otphub.domain import webhooks as rules
from otphub.domain.activation import Activation
from otphub.services.runtime import Runtime

MAX_PER_CUSTOMER = 3
KIND = stored.KIND
SECRET_PREFIX = "ohw_"  # noqa: S105  (a prefix, not a secret)
RESOLVE_TIMEOUT = 5.0  # seconds for the name of a URL to resolve


@dataclass(frozen=True)
class NewWebhook:
    id: int
    url: str
    secret: str  # shown once


@dataclass(frozen=True)
class WebhookInfo:
    id: int
    url: str
    created_at: int
    # Of its latest delivery, if any.
    last_attempt_at: int | None
    last_error: str | None


class UnsafeTarget(errors.InvalidInput):
    """A URL whose host resolves to an address deliveries may not reach, or not at all."""


_RESOLVER_THREADS = 8
_resolvers: list[ThreadPoolExecutor] = []


def _resolver() -> ThreadPoolExecutor:
    # Threads of their own for the system resolver: a receiver's name server that never
    # answers keeps a thread busy well past our timeout, and must not take the threads
    # that SQLite's checkpoints and long reads run in (the loop's default executor). When
    # all of these are busy, lookups queue here and time out as failed attempts.
    if not _resolvers:
        _resolvers.append(
            ThreadPoolExecutor(max_workers=_RESOLVER_THREADS, thread_name_prefix="webhook-dns")
        )
    return _resolvers[0]


async def resolve(target: rules.Target) -> list[str]:
    """Every address the URL's host resolves to (a literal address is itself), within
    ``RESOLVE_TIMEOUT``; raises ``UnsafeTarget`` when it does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            found = await loop.run_in_executor(
                _resolver(),
                functools.partial(
                    socket.getaddrinfo,
                    target.host,
                    target.port,
                    type=socket.SOCK_STREAM,
                    proto=socket.IPPROTO_TCP,
                ),
            )
    except TimeoutError:
        raise UnsafeTarget(f"the host {target.host} did not resolve within 5 s") from None
    except (OSError, UnicodeError):
        raise UnsafeTarget(f"the host {target.host} does not resolve") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeTarget(f"the host {target.host} does not resolve")
    return addresses


async def reachable_addresses(rt: Runtime, target: rules.Target) -> list[str]:
    """The addresses a delivery may connect to: all of the host's, refused as a whole
    (``UnsafeTarget``) when any one of them is private, loopback, link-local, ... (a name
    with one public and one private address would otherwise reach the private one half the
    time), unless ``OTPHUB_WEBHOOK_ALLOW_PRIVATE``."""
    addresses = await resolve(target)
    if not rt.settings.webhook_allow_private:
        for address in addresses:
            if not rules.is_public(address):
                raise UnsafeTarget(
                    f"the host {target.host} resolves to {address}, a private, loopback, "
                    "link-local or reserved address (OTPHUB_WEBHOOK_ALLOW_PRIVATE allows it)"
                )
    return addresses


async def add(rt: Runtime, *, customer_id: int, url: str) -> NewWebhook:
    """Register a URL: checked (syntax, then where its host resolves) before anything is
    written. ``InvalidInput`` says what is wrong; ``NotFound`` for no such customer."""
    target = rules.parse_url(url)
    await reachable_addresses(rt, target)  # no transaction open during the lookup
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    async with rt.db.write() as conn:
        if not await stored.lock_customer(conn, customer_id):
            raise errors.NotFound(f"no customer {customer_id}")
        if await stored.count_live(conn, customer_id) >= MAX_PER_CUSTOMER:
            raise errors.InvalidInput(
                f"customer {customer_id} has {MAX_PER_CUSTOMER} webhooks already "
                "(the most allowed): remove one first"
            )
        webhook_id = await stored.insert_webhook(
            conn,
            customer_id=customer_id,
            url=target.url,
            sealed_secret=sealing.seal(rt.secret, secret),
            now=rt.clock.now(),
        )
    return NewWebhook(id=webhook_id, url=target.url, secret=secret)


def _last_attempt(latest: stored.LatestDelivery) -> int | None:
    if latest.delivered_at is not None:
        return latest.delivered_at
    if latest.attempts == 0:
        return latest.failed_at  # dropped unsent (its webhook removed), or None: not tried
    if latest.failed_at is not None:
        return latest.failed_at
    if latest.attempts >= rules.MAX_ATTEMPTS:
        return None  # claimed for its last attempt right now
    # Waiting for its next attempt, which was set this long after the last one ended.
    return latest.next_attempt_at - rules.wait_before(latest.message_id, latest.attempts + 1)


async def list_of(
    rt: Runtime, *, customer_id: int, with_deliveries: bool = True
) -> list[WebhookInfo]:
    """A customer's live webhooks (not removed), oldest first; ``NotFound`` for no such
    customer. ``with_deliveries=False`` leaves ``last_attempt_at`` and ``last_error`` out
    (``None``): finding a webhook's latest message reads the outbox by a key prefix, which
    no index serves on PostgreSQL (a collation other than C), so a caller that shows no
    deliveries (API v1's list) skips it."""
    async with rt.db.read() as conn:
        if not await customers.exists(conn, customer_id):
            raise errors.NotFound(f"no customer {customer_id}")
        found: list[WebhookInfo] = []
        for row in await stored.live_of(conn, customer_id):
            latest = await stored.latest_delivery(conn, row.id) if with_deliveries else None
            found.append(
                WebhookInfo(
                    id=row.id,
                    url=row.url,
                    created_at=row.created_at,
                    last_attempt_at=None if latest is None else _last_attempt(latest),
                    last_error=None if latest is None else latest.last_error,
                )
            )
        return found


async def remove(rt: Runtime, *, webhook_id: int, customer_id: int | None = None) -> None:
    """Remove a webhook (its row stays, marked removed, for the messages that name it);
    its undelivered messages are dropped, not sent. ``NotFound`` for an unknown or
    removed one, and for another customer's when ``customer_id`` is given."""
    async with rt.db.write() as conn:
        row = await stored.get(conn, webhook_id)
        if (
            row is None
            or row.removed_at is not None
            or (customer_id is not None and row.customer_id != customer_id)
        ):
            raise errors.NotFound(f"no webhook {webhook_id}")
        now = rt.clock.now()
        await stored.mark_removed(conn, webhook_id, now=now)
        await stored.drop_pending(conn, webhook_id, now=now, reason="the webhook was removed")


async def enqueue_sms(
    rt: Runtime,
    conn: Conn,
    *,
    activation: Activation,
    sms_id: int,
    text: str,
    code: str,
    received_at: int,
) -> None:
    """In the transaction that matched an SMS to a live activation: one message per live
    URL of its customer (one statement when there is none). A second push of the same SMS
    never comes here (it is stored once); the dedupe key makes a second call a no-op too."""
    webhook_ids = await stored.live_ids(conn, activation.customer_id)
    if not webhook_ids:
        return
    body = rules.body(
        activation_id=activation.id,
        service=activation.service,
        text=text,
        code=code,
        country=activation.country_id,
        received_at=rt.timestamp(received_at),
    )
    for webhook_id in webhook_ids:
        await outbox.enqueue(
            conn,
            is_sqlite=rt.db.is_sqlite,
            kind=KIND,
            dedupe_key=stored.dedupe_key(webhook_id, sms_id),
            payload={"webhook_id": webhook_id, "body": body},
            now=received_at,
            activation_id=activation.id,
        )


# ---------------------------------------------------------------- the web console

RECENT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Attempt:
    """One message of a webhook as its owner sees it: what it was, and how it went."""

    message_id: int
    is_test: bool
    activation_id: int | None
    created_at: int
    attempts: int
    outcome: str  # "delivered", "failed", "dropped", "pending"
    last_attempt_at: int | None
    next_attempt_at: int | None
    error: str | None


def _attempt(delivery: stored.Delivery) -> Attempt:
    if delivery.delivered_at is not None:
        outcome, next_at = "delivered", None
    elif delivery.failed_at is not None:
        outcome, next_at = ("dropped" if delivery.attempts == 0 else "failed"), None
    else:
        outcome, next_at = "pending", delivery.next_attempt_at
    latest = stored.LatestDelivery(
        message_id=delivery.message_id,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
        failed_at=delivery.failed_at,
        last_error=delivery.last_error,
    )
    return Attempt(
        message_id=delivery.message_id,
        is_test=delivery.is_test,
        activation_id=delivery.activation_id,
        created_at=delivery.created_at,
        attempts=delivery.attempts,
        outcome=outcome,
        last_attempt_at=_last_attempt(latest)
        if delivery.attempts or outcome != "pending"
        else None,
        next_attempt_at=next_at,
        error=delivery.last_error,
    )


async def with_attempts(
    rt: Runtime, *, customer_id: int, limit: int = RECENT_ATTEMPTS
) -> list[tuple[WebhookInfo, list[Attempt]]]:
    """The customer's live webhooks, oldest first, each with its latest ``limit`` messages
    (newest first): at most 3 webhooks, one bounded read each."""
    async with rt.db.read() as conn:
        if not await customers.exists(conn, customer_id):
            raise errors.NotFound(f"no customer {customer_id}")
        found: list[tuple[WebhookInfo, list[Attempt]]] = []
        for row in await stored.live_of(conn, customer_id):
            recent = [
                _attempt(d) for d in await stored.recent_deliveries(conn, row.id, limit=limit)
            ]
            latest = recent[0] if recent else None
            info = WebhookInfo(
                id=row.id,
                url=row.url,
                created_at=row.created_at,
                last_attempt_at=None if latest is None else latest.last_attempt_at,
                last_error=None if latest is None else latest.error,
            )
            found.append((info, recent))
        return found


async def send_test(rt: Runtime, *, webhook_id: int, customer_id: int) -> bool:
    """Queue a signed test message to the customer's webhook through the outbox (the
    delivery worker sends it, with its retries; nothing is sent inside the request).
    ``False`` when a test of this webhook was queued this very second already;
    ``NotFound`` for an unknown, removed or another customer's webhook."""
    async with rt.db.write() as conn:
        row = await stored.get(conn, webhook_id)
        if row is None or row.removed_at is not None or row.customer_id != customer_id:
            raise errors.NotFound(f"no webhook {webhook_id}")
        now = rt.clock.now()
        return await outbox.enqueue(
            conn,
            is_sqlite=rt.db.is_sqlite,
            kind=KIND,
            dedupe_key=stored.test_key(webhook_id, now),
            payload={
                "webhook_id": webhook_id,
                "body": rules.test_body(received_at=rt.timestamp(now)),
            },
            now=now,
        )
