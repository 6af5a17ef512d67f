"""The upstream poller (services/upstream_stock.py) against a fake upstream: stock and
costs, the balance, auto-priced offers by the markup formula, offers the operator set left
alone, down and up, and one poll per period for the whole fleet."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from otphub.db.schema import offers, providers
from otphub.domain.supply import RemoteProvider
from otphub.services import inventory, upstream_stock
from tests.support import Hub
from tests.upstream.conftest import register
from tests.upstream.fake import FakeUpstream, never

PERIOD = 30  # OTPHUB_UPSTREAM_POLL_SECONDS's default


def prices(**by_country: dict[str, tuple[Any, int]]) -> str:
    return json.dumps(
        {
            country.lstrip("c"): {
                s: {"cost": cost, "count": n} for s, (cost, n) in services.items()
            }
            for country, services in by_country.items()
        }
    )


def answer(fake: FakeUpstream, *, balance: str = "ACCESS_BALANCE:5.00", **by_country: Any) -> None:
    fake.answers["getBalance"] = balance
    fake.answers["getPrices"] = prices(**by_country)


def poll(hub: Hub) -> int:
    hub.clock.advance(PERIOD)
    return hub.call(upstream_stock.poll_due(hub.rt))


def rows(hub: Hub, query: Any) -> list[Any]:
    async def run() -> list[Any]:
        async with hub.rt.db.read() as conn:
            return list((await conn.execute(query)).all())

    return hub.call(run())


def offers_of(hub: Hub, provider: RemoteProvider) -> dict[tuple[int, str], tuple[int, int, bool]]:
    found = rows(
        hub,
        select(
            offers.c.country_id,
            offers.c.service,
            offers.c.price,
            offers.c.payout,
            offers.c.auto_priced,
        ).where(offers.c.provider_id == provider.id),
    )
    return {(r[0], r[1]): (r[2], r[3], bool(r[4])) for r in found}


def health(hub: Hub, provider: RemoteProvider) -> tuple[int | None, str | None, int | None]:
    row = rows(
        hub,
        select(providers.c.down_since, providers.c.last_error, providers.c.remote_balance).where(
            providers.c.id == provider.id
        ),
    )[0]
    return row[0], row[1], row[2]


def stock(hub: Hub, provider: RemoteProvider) -> list[tuple[int, str, int, int]]:
    lines = hub.call(upstream_stock.stock(hub.rt, provider_id=provider.id))
    return [(line.country_id, line.service, line.count, line.cost) for line in lines]


def test_a_poll_puts_the_stock_on_sale_at_the_markup(hub: Hub, fake: FakeUpstream) -> None:
    # 12.5 % and 0.03: 0.41 x 1.125 = 0.46125 -> 0.47 (rounded up) + 0.03 = 0.50.
    provider = register(hub, fake.url, markup_bp=1250, markup_amount=3)
    answer(fake, c0={"tg": (0.41, 7), "wa": (1, 2), "vk": (0.125, 4)}, c2={"tg": (0.8, 1)})
    assert poll(hub) == 1
    assert stock(hub, provider) == [(0, "tg", 7, 41), (0, "wa", 2, 100), (2, "tg", 1, 80)]
    assert offers_of(hub, provider) == {
        (0, "tg"): (50, 41, True),
        (0, "wa"): (116, 100, True),  # 1.125 + 0.03 = 1.155 -> 1.16 (1.13 + 0.03)
        (2, "tg"): (93, 80, True),  # 0.90 + 0.03
    }
    assert health(hub, provider) == (None, None, 500)
    # Each getPrices line with more decimals than the currency is refused, never rounded:
    # vk has no stock and no offer.


def test_costs_change_and_auto_prices_follow(hub: Hub, fake: FakeUpstream) -> None:
    provider = register(hub, fake.url, markup_bp=2000)
    answer(fake, c0={"tg": (0.5, 3)})
    poll(hub)
    assert offers_of(hub, provider) == {(0, "tg"): (60, 50, True)}
    answer(fake, c0={"tg": (0.55, 1)}, balance="ACCESS_BALANCE:0.40")
    poll(hub)
    assert offers_of(hub, provider) == {(0, "tg"): (66, 55, True)}
    assert stock(hub, provider) == [(0, "tg", 1, 55)]
    assert health(hub, provider)[2] == 40


def test_an_offer_the_operator_set_is_left_alone(hub: Hub, fake: FakeUpstream) -> None:
    provider = register(hub, fake.url, markup_bp=1000)
    answer(fake, c0={"tg": (0.5, 3), "wa": (0.5, 3)})
    poll(hub)
    # The operator sets tg explicitly: it is no longer auto-priced.
    hub.call(
        inventory.set_offer(
            hub.rt, provider_id=provider.id, service="tg", country_id=0, price=90, payout=50
        )
    )
    answer(fake, c0={"tg": (0.7, 3), "wa": (0.7, 3)})
    poll(hub)
    assert offers_of(hub, provider) == {(0, "tg"): (90, 50, False), (0, "wa"): (77, 70, True)}


def test_a_failed_poll_marks_it_down_and_takes_its_stock_away(hub: Hub, fake: FakeUpstream) -> None:
    provider = register(hub, fake.url)
    answer(fake, c0={"tg": (0.5, 3)})
    poll(hub)
    assert stock(hub, provider)
    for broken in ("BAD_KEY", "<html>busy</html>", never):
        fake.answers["getPrices"] = broken
        assert poll(hub) == 0
        down_since, error, _ = health(hub, provider)
        assert down_since is not None and error, broken
        assert "upstream-key" not in error
        assert stock(hub, provider) == []
    first_down = health(hub, provider)[0]
    answer(fake, c0={"tg": (0.5, 2)})
    assert poll(hub) == 1
    assert health(hub, provider)[:2] == (None, None)
    assert stock(hub, provider) == [(0, "tg", 2, 50)]
    assert first_down is not None


def test_a_wrong_balance_answer_marks_it_down(hub: Hub, fake: FakeUpstream) -> None:
    provider = register(hub, fake.url)
    answer(fake, balance="BAD_KEY", c0={"tg": (0.5, 3)})
    assert poll(hub) == 0
    assert health(hub, provider)[0] is not None
    assert fake.of("getPrices") == []


def test_one_poll_per_period_across_processes(hub: Hub, fake: FakeUpstream) -> None:
    """The turn is claimed in the database: a second process (here: a second call) asking
    within the same period polls nothing."""
    register(hub, fake.url)
    answer(fake, c0={"tg": (0.5, 3)})
    assert poll(hub) == 1
    assert hub.call(upstream_stock.poll_due(hub.rt)) == 0
    hub.clock.advance(PERIOD - 1)
    assert hub.call(upstream_stock.poll_due(hub.rt)) == 0
    assert len(fake.of("getPrices")) == 1
    hub.clock.advance(1)
    assert hub.call(upstream_stock.poll_due(hub.rt)) == 1
