"""getPrices reads a per-process count of the stock, renewed every OTPHUB_STOCK_CACHE_SECONDS;
purchases never use it."""

from __future__ import annotations

import time

import pytest

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
