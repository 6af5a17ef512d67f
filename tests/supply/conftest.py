"""Fixtures of the supply tests: a fake SMSHub agent on 127.0.0.1 per test, and shortcuts to
connect it to the test's hub."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from otphub.services import accounts, agent_stock, outbox
from tests.supply.fake_agent import FakeAgent
from tests.support import Hub, Seller


@pytest.fixture
def hub_settings() -> dict[str, object]:
    # Short deadlines: a hanging agent costs the test half a second, not three.
    return {"agent_timeout_seconds": 0.5, "agent_poll_seconds": 15}


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent().start()
    yield fake
    fake.stop()


def connect(hub: Hub, fake: FakeAgent, *, name: str | None = None) -> Seller:
    created = hub.call(
        accounts.add_provider(
            hub.rt, name=name or f"agent-{uuid.uuid4().hex[:6]}", agent_url=fake.url
        )
    )
    return Seller(created.id, created.key)


def poll(hub: Hub) -> int:
    return hub.call(agent_stock.poll_due(hub.rt))


def deliver(hub: Hub) -> int:
    return hub.call(outbox.deliver_due(hub.rt))


def stocked_agent(
    hub: Hub,
    fake: FakeAgent,
    *,
    price: str = "0.40",
    payout: str = "0.30",
    service: str = "tg",
    country: int = 0,
    stock: dict[str, dict[str, dict[str, int]]] | None = None,
) -> Seller:
    """An agent provider with an offer and its stock polled."""
    seller = connect(hub, fake)
    hub.offer(seller, service=service, country=country, price=price, payout=payout)
    fake.behaviour.stock = stock or {"russia": {"beeline": {service: 5}}}
    assert poll(hub) >= 1
    return seller
