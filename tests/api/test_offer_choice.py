"""Offer choice (issue 9, section 3): among offers at the same price, purchases go to the
provider with the better success rate, then to the one whose first SMS comes faster (the
records refreshed once a minute by ``refresh_delivery_scores``), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from otphub.db.schema import providers
from otphub.services import inventory
from tests.support import Hub, Seller


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"early_cancel": 0}


def delivered(hub: Hub, key: str, seller: Seller, *, after: int, service: str = "tg") -> None:
    """One activation of ``seller`` whose first SMS comes ``after`` seconds after purchase."""
    activation_id, phone = hub.buy(key, service=service, providerIds=seller.id)
    hub.clock.advance(after)
    assert hub.push_sms(seller, phone, "code 12345").status_code == 200
    hub.clock.advance(3)
    assert hub.push_sms(seller, phone, "code 67890").status_code == 200  # only the first counts
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"


def failed(hub: Hub, key: str, seller: Seller, service: str = "tg") -> None:
    activation_id, _ = hub.buy(key, service=service, providerIds=seller.id)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"


def records(hub: Hub) -> dict[int, tuple[int, int | None]]:
    """(delivery_score, sms_seconds) per provider, after a refresh."""
    assert hub.call(inventory.refresh_delivery_scores(hub.rt, every=0))

    async def read() -> dict[int, tuple[int, int | None]]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(providers.c.id, providers.c.delivery_score, providers.c.sms_seconds)
            )
            return {int(i): (int(score), seconds) for i, score, seconds in rows}

    return hub.call(read())


def buyers(hub: Hub, seller_a: Seller, seller_b: Seller, count: int) -> list[int]:
    """The provider of each of ``count`` purchases by new customers (so that no earlier
    cancel of theirs keeps a number from them)."""
    chosen = []
    for i in range(count):
        key = hub.customer("1.00", name=f"buyer{i}")
        activation_id, phone = hub.buy(key, service="tg")
        owner = seller_a if phone.startswith("790000001") else seller_b
        chosen.append(owner.id)
        assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    return chosen


def test_the_better_success_rate_wins_a_price_tie(hub: Hub) -> None:
    good = hub.stocked(count=10, price="0.50", first_phone=79000000100)
    bad = hub.stocked(count=10, price="0.50", first_phone=79000000200)
    key = hub.customer("20.00")
    for _ in range(3):
        delivered(hub, key, good, after=60)
        failed(hub, key, bad)
    delivered(hub, key, bad, after=5)  # faster, but its success rate is worse
    found = records(hub)
    assert found[good.id] == ((3 + 1) * 1000 // (3 + 2), 60)
    assert found[bad.id] == ((1 + 1) * 1000 // (4 + 2), 5)
    assert set(buyers(hub, good, bad, 4)) == {good.id}


def test_the_median_time_to_the_first_sms(hub: Hub) -> None:
    odd = hub.stocked(count=10, price="0.50", first_phone=79000000100)
    even = hub.stocked(count=10, price="0.50", first_phone=79000000200)
    key = hub.customer("20.00")
    for seconds in (30, 10, 50):
        delivered(hub, key, odd, after=seconds)
    for seconds in (4, 40, 9, 20):
        delivered(hub, key, even, after=seconds)
    found = records(hub)
    # The middle one of three; the mean of the middle two of four (9 and 20), rounded down.
    assert found[odd.id] == (800, 30)
    assert found[even.id] == (833, 14)


def test_equal_records_go_to_the_faster_provider(hub: Hub) -> None:
    slow = hub.stocked(count=10, price="0.50", first_phone=79000000100)
    fast = hub.stocked(count=10, price="0.50", first_phone=79000000200)
    key = hub.customer("20.00")
    for seconds in (30, 31):
        delivered(hub, key, slow, after=seconds)
        delivered(hub, key, fast, after=seconds - 25)
    found = records(hub)
    assert found[slow.id] == (750, 30) and found[fast.id] == (750, 5)
    assert set(buyers(hub, slow, fast, 4)) == {fast.id}


def test_a_provider_without_a_first_sms_time_comes_last(hub: Hub) -> None:
    """No SMS yet (sms_seconds NULL) is not "fastest": NULLs order last on both
    databases (PostgreSQL orders them first in a descending sort, SQLite in an ascending
    one)."""
    unknown = hub.stocked(count=10, price="0.50", first_phone=79000000100)
    known = hub.stocked(count=10, price="0.50", first_phone=79000000200)
    key = hub.customer("20.00")
    delivered(hub, key, known, after=100)
    failed(hub, key, known)
    found = records(hub)
    assert found[unknown.id] == (500, None)
    assert found[known.id] == (500, 100)
    assert set(buyers(hub, unknown, known, 4)) == {known.id}


def test_the_price_still_comes_first(hub: Hub) -> None:
    dear = hub.stocked(count=10, price="0.60", first_phone=79000000100)
    cheap = hub.stocked(count=10, price="0.50", first_phone=79000000200)
    key = hub.customer("20.00")
    for _ in range(3):
        delivered(hub, key, dear, after=2)
        failed(hub, key, cheap)
    records(hub)
    assert set(buyers(hub, dear, cheap, 3)) == {cheap.id}


def test_only_the_window_counts(hub: Hub) -> None:
    """The records look back DELIVERY_WINDOW (7 days): older activations drop out."""
    seller = hub.stocked(count=10, price="0.50", first_phone=79000000100)
    key = hub.customer("20.00")
    delivered(hub, key, seller, after=40)
    hub.clock.advance(inventory.DELIVERY_WINDOW - 100)
    delivered(hub, key, seller, after=10)
    assert records(hub)[seller.id] == (750, 25)
    hub.clock.advance(60)  # the first purchase is now older than the window
    assert records(hub)[seller.id] == (666, 10)
