"""getPrices, getNumbersStatus (with or without an operator) and getOperators read a
per-process count of the stock, renewed every OTPHUB_STOCK_CACHE_SECONDS; purchases never
use it. Without the count (0), these reads never run on SQLite's event loop."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import update

from otphub.db import inventory
from otphub.db.inventory import NumberFilter, StockLine
from otphub.db.schema import numbers
from otphub.services import prices
from tests.statements import recorded
from tests.support import Hub

PRICES = '{"0":{"tg":{"cost":0.5,"count":%d,"physicalCount":%d}}}'


@pytest.mark.parametrize("hub_settings", [{"stock_cache_seconds": 3600}])
def test_prices_come_from_the_cached_count_until_it_is_renewed(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("5.00")
    assert hub.say(key, "getPrices") == PRICES % (2, 2)
    hub.buy(key)
    hub.buy(key)
    # The cached count lags; the purchase path does not: there is nothing left to buy.
    assert hub.say(key, "getPrices") == PRICES % (2, 2)
    assert hub.say(key, "getPrices", service="tg", country=0) == PRICES % (2, 2)
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    hub.rt.extensions["stock"].computed_at = float("-inf")  # the period has passed
    assert hub.say(key, "getPrices") == "{}"
    assert hub.say(key, "getPricesV2") == "{}"


@pytest.mark.parametrize("hub_settings", [{"stock_cache_seconds": 3600}])
def test_an_expired_count_is_served_while_the_next_one_is_made(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("5.00")
    assert hub.say(key, "getPrices") == PRICES % (2, 2)
    hub.buy(key)
    cache = hub.rt.extensions["stock"]
    cache.computed_at -= 7200  # the period has passed
    # This request does not wait for the new count: it gets the one there is...
    assert hub.say(key, "getPrices") == PRICES % (2, 2)
    # ...and the new count, made beside it, is there for the next requests.
    deadline = time.monotonic() + 10
    while hub.say(key, "getPrices") != PRICES % (1, 1):
        assert time.monotonic() < deadline, "the count was never renewed"
        time.sleep(0.05)


# ---------------------------------------------------------------- operators


METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"


def stocked_with_operators(hub: Hub) -> str:
    """Country 0: an offer for tg and one for wa over three mts numbers (one of them
    finished for tg), two beeline (one busy), one without an operator and one megafon
    number that is offline. Country 2: two kcell numbers for tg. A customer's key."""
    seller = hub.stocked(count=3, operator="mts")
    hub.offer(seller, service="wa", price="0.20")
    hub.numbers(seller, ["79110000001", "79110000002"], operator="beeline")
    hub.numbers(seller, ["79120000001"])
    hub.numbers(seller, ["79130000001"], operator="megafon")
    hub.stocked(count=2, country=2, operator="kcell", first_phone=77010000001)
    key = hub.customer("10.00")
    finished, phone = hub.buy(key, operator="mts")
    assert hub.push_sms(seller, phone, "code 12345").status_code == 200
    assert hub.say(key, "setStatus", id=finished, status=6) == "ACCESS_ACTIVATION"
    hub.buy(key, service="wa", operator="beeline")

    async def offline() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(
                update(numbers).where(numbers.c.phone == "79130000001").values(online=False)
            )

    hub.call(offline())
    return key


def wait_for_the_counts(hub: Hub, key: str) -> None:
    """The stock's count is made at its first use, and waited for; the operators' count is
    started by its first use, which meanwhile counts in the database."""
    assert hub.say(key, "getPrices", service="tg", country=2) != "{}"
    assert hub.say(key, "getOperators", country=0) != "OPERATORS_NOT_FOUND"
    deadline = time.monotonic() + 10
    while hub.rt.extensions["stock_operators"].computed_at == float("-inf"):
        assert time.monotonic() < deadline, "the operators were never counted"
        time.sleep(0.02)


OPERATOR_ANSWERS = {
    ("getNumbersStatus", (("country", 0),)): '{"tg_0":"4","wa_0":"5"}',
    ("getNumbersStatus", (("country", 0), ("operator", "beeline"))): '{"tg_0":"1","wa_0":"1"}',
    ("getNumbersStatus", (("country", 0), ("operator", "mts,beeline,mts"))): (
        '{"tg_0":"3","wa_0":"4"}'
    ),
    ("getNumbersStatus", (("country", 0), ("operator", "megafon"))): "{}",
    ("getNumbersStatus", (("country", 2), ("operator", "kcell"))): '{"tg_0":"2"}',
    ("getOperators", ()): (
        '{"status":"success","countryOperators":{"0":["beeline","mts"],"2":["kcell"]}}'
    ),
    ("getOperators", (("country", 2),)): '{"status":"success","countryOperators":{"2":["kcell"]}}',
    ("getOperators", (("country", 5),)): "OPERATORS_NOT_FOUND",
}


@pytest.mark.parametrize("hub_settings", [{"stock_cache_seconds": 3600}])
def test_operator_stock_and_operators_are_answered_from_the_count(hub: Hub) -> None:
    """getNumbersStatus with ``operator``, and getOperators, read every number of a
    country (of all of them) at each request; the count already has them."""
    key = stocked_with_operators(hub)
    wait_for_the_counts(hub, key)
    with recorded(hub.rt.db) as statements:
        answers = {
            (action, params): hub.say(key, action, **dict(params))
            for action, params in OPERATOR_ANSWERS
        }
    assert answers == OPERATOR_ANSWERS
    assert [s.sql for s in statements if s.reads("numbers")] == []


def test_operator_stock_and_operators_without_the_count(hub: Hub) -> None:
    """The same answers counted in the database at each request (OTPHUB_STOCK_CACHE_SECONDS
    is 0 in the tests' deployments)."""
    key = stocked_with_operators(hub)
    assert hub.rt.settings.stock_cache_seconds == 0
    for (action, params), expected in OPERATOR_ANSWERS.items():
        assert hub.say(key, action, **dict(params)) == expected, (action, params)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("hub_settings", [{"metrics_token": METRICS_TOKEN}])
def test_reads_that_scan_run_beside_the_event_loop_on_sqlite(hub: Hub) -> None:
    """SQLite runs on the event loop's thread: a read of every number (or of the journal)
    there stops every other request for its duration. These run in a worker thread
    (``read_aside``). On PostgreSQL the database server does the reading; there the tests
    above and test_metric_gauges_read_the_journal_through_indexes apply."""
    key = stocked_with_operators(hub)
    loop_thread = hub.live.thread.ident
    requests: dict[str, Callable[[], httpx.Response]] = {
        "getNumbersStatus with an operator": lambda: hub.api(
            key, "getNumbersStatus", country=0, operator="mts"
        ),
        "getNumbersStatus": lambda: hub.api(key, "getNumbersStatus", country=0),
        "getOperators": lambda: hub.api(key, "getOperators"),
        "getOperators of a country": lambda: hub.api(key, "getOperators", country=0),
        "getPrices": lambda: hub.api(key, "getPrices"),
        "/metrics": lambda: hub.http.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        ),
    }
    on_the_loop: dict[str, list[str]] = {}
    for name, request in requests.items():
        with recorded(hub.rt.db) as statements:
            assert request().status_code == 200, name
        reads = [s for s in statements if s.reads("numbers") or s.reads("activations")]
        assert reads, name
        on_the_loop[name] = [s.sql for s in reads if s.thread == loop_thread]
    assert on_the_loop == {name: [] for name in requests}


@pytest.mark.parametrize("hub_settings", [{"stock_cache_seconds": 3600}])
def test_the_count_per_operator_agrees_with_counting_in_the_database(hub: Hub) -> None:
    wait_for_the_counts(hub, stocked_with_operators(hub))

    async def counted(
        service: str | None, country_id: int | None, wanted: NumberFilter
    ) -> list[StockLine]:
        async with hub.rt.db.read() as conn:
            return list(
                await inventory.stock(conn, service=service, country_id=country_id, wanted=wanted)
            )

    async def listed(country_id: int | None) -> dict[int, list[str]]:
        async with hub.rt.db.read() as conn:
            return await inventory.operators(conn, country_id=country_id)

    for country in (None, 0, 2, 5):
        raw_country = None if country is None else str(country)
        for service in (None, "tg", "wa"):
            for operators in ((), ("mts",), ("beeline", "mts"), ("mts", "mts"), ("any",)):
                wanted = NumberFilter(operators=operators)
                cached = hub.call(
                    prices.stock(hub.rt, service=service, country=raw_country, wanted=wanted)
                )
                assert list(cached) == hub.call(counted(service, country, wanted)), (
                    country,
                    service,
                    operators,
                )
        found = hub.call(prices.operators(hub.rt, country=raw_country))
        assert found == hub.call(listed(country)), country
