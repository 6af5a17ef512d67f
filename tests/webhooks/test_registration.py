"""Registering webhooks, on SQLite and PostgreSQL: the URL's shape, where its host resolves
(refused when private unless OTPHUB_WEBHOOK_ALLOW_PRIVATE), at most 3 per customer, and
nothing written by a refusal."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from otphub.db.schema import webhooks as webhook_table
from otphub.domain import errors, sealing
from otphub.services import webhooks
from tests.support import Hub


def add(hub: Hub, customer_id: int, url: str) -> webhooks.NewWebhook:
    return hub.call(webhooks.add(hub.rt, customer_id=customer_id, url=url))


def stored_count(hub: Hub) -> int:
    async def read() -> int:
        async with hub.rt.db.read() as conn:
            found = await conn.execute(select(func.count()).select_from(webhook_table))
            return int(found.scalar_one())

    return hub.call(read())


PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.4/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:9000/",
    "http://224.0.0.1/",
    "http://[::1]:8080/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::5]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://localhost/hook",  # a name resolving to loopback
    "http://localhost:8000/hook",
]


@pytest.mark.parametrize("hub_settings", [{"webhook_allow_private": False}])
def test_private_addresses_are_refused_at_registration(hub: Hub) -> None:
    customer_id, _ = hub.customer_id()
    for url in PRIVATE_URLS:
        with pytest.raises(webhooks.UnsafeTarget, match="OTPHUB_WEBHOOK_ALLOW_PRIVATE"):
            add(hub, customer_id, url)
    assert stored_count(hub) == 0


@pytest.mark.parametrize("hub_settings", [{"webhook_allow_private": False}])
def test_a_host_that_does_not_resolve_is_refused(hub: Hub) -> None:
    customer_id, _ = hub.customer_id()
    with pytest.raises(webhooks.UnsafeTarget, match="does not resolve"):
        add(hub, customer_id, "https://no-such-host.invalid/hook")
    assert stored_count(hub) == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("ftp://example.com/hook", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http:///hook", "no host"),
        ("https://user:pass@example.com/hook", "user name or password"),
        ("https://user@example.com/hook", "user name or password"),
        ("https://example.com:99999/hook", "malformed"),
        ("https://example.com/" + "a" * 1990, "longer than 2000"),
        ("https://example.com/a b", "printable ASCII"),
        ("https://example.com/\x00", "printable ASCII"),
        ("https://bücher.example/", "printable ASCII"),
        ("https://example.com/hook#part", "fragment"),
    ],
)
def test_malformed_urls_are_refused(hub: Hub, url: str, why: str) -> None:
    customer_id, _ = hub.customer_id()
    with pytest.raises(errors.InvalidInput, match=why):
        add(hub, customer_id, url)
    assert stored_count(hub) == 0


def test_at_most_three_per_customer(hub: Hub) -> None:
    customer_id, _ = hub.customer_id()
    other_id, _ = hub.customer_id(name="other")
    created = [add(hub, customer_id, f"http://127.0.0.1:9/hook{i}") for i in range(3)]
    with pytest.raises(errors.InvalidInput, match="3 webhooks already"):
        add(hub, customer_id, "http://127.0.0.1:9/hook4")
    add(hub, other_id, "http://127.0.0.1:9/other")  # the limit is per customer
    # Another customer's webhook cannot be removed through this one's id.
    with pytest.raises(errors.NotFound):
        hub.call(webhooks.remove(hub.rt, webhook_id=created[0].id, customer_id=other_id))
    hub.call(webhooks.remove(hub.rt, webhook_id=created[0].id, customer_id=customer_id))
    with pytest.raises(errors.NotFound):  # removed already
        hub.call(webhooks.remove(hub.rt, webhook_id=created[0].id))
    add(hub, customer_id, "http://127.0.0.1:9/hook4")
    listed = hub.call(webhooks.list_of(hub.rt, customer_id=customer_id))
    assert [w.url for w in listed] == [
        "http://127.0.0.1:9/hook1",
        "http://127.0.0.1:9/hook2",
        "http://127.0.0.1:9/hook4",
    ]
    assert all(w.last_attempt_at is None and w.last_error is None for w in listed)


def test_secrets_are_distinct_and_kept_sealed(hub: Hub) -> None:
    customer_id, _ = hub.customer_id()
    first = add(hub, customer_id, "http://127.0.0.1:9/a")
    second = add(hub, customer_id, "http://127.0.0.1:9/b")
    assert first.secret != second.secret
    assert first.secret.startswith("ohw_") and len(first.secret) > 40

    async def read() -> list[str]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(webhook_table.c.sealed_secret).order_by(webhook_table.c.id)
            )
            return [str(r[0]) for r in rows]

    sealed = hub.call(read())
    assert first.secret not in sealed[0]
    assert [sealing.unseal(hub.rt.secret, s) for s in sealed] == [first.secret, second.secret]


def test_unknown_customer(hub: Hub) -> None:
    with pytest.raises(errors.NotFound):
        add(hub, 999, "http://127.0.0.1:9/a")
    with pytest.raises(errors.NotFound):
        hub.call(webhooks.list_of(hub.rt, customer_id=999))
    with pytest.raises(errors.NotFound):
        hub.call(webhooks.remove(hub.rt, webhook_id=999))
