"""Customers' webhooks: up to 3 URLs per customer, each with its own signing secret (shown
once, kept sealed under the server secret), and one outbox message per URL for each SMS
that reaches a live activation of the customer, written in the transaction that stores
the SMS (``services/webhook_delivery.py`` sends them)."""

from __future__ import annotations

import asyncio
import secrets
import socket
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


async def resolve(target: rules.Target) -> list[str]:
    """Every address the URL's host resolves to (a literal address is itself), within
    ``RESOLVE_TIMEOUT``; raises ``UnsafeTarget`` when it does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
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


async def list_of(rt: Runtime, *, customer_id: int) -> list[WebhookInfo]:
    """A customer's live webhooks (not removed), oldest first; ``NotFound`` for no such
    customer."""
    async with rt.db.read() as conn:
        if not await customers.exists(conn, customer_id):
            raise errors.NotFound(f"no customer {customer_id}")
        found: list[WebhookInfo] = []
        for row in await stored.live_of(conn, customer_id):
            latest = await stored.latest_delivery(conn, row.id)
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
