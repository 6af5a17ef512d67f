"""Byte-exact golden answers of getPrices, getPricesV2 and getPricesV3, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

from tests.api.answers import document, word
from tests.support import Hub


def buy(hub: Hub, key: str, **params: Any) -> tuple[int, str]:
    body = word(hub, key, "getNumber", **{"service": "tg", **params})
    assert body.startswith("ACCESS_NUMBER:"), body
    _, activation_id, phone = body.split(":")
    return int(activation_id), phone


class Market:
    """Four providers in two countries. A provider's numbers serve all its offers there.

    - ``a``: country 0, tg at 0.50 and wa at 1.00, 2 numbers
    - ``b``: country 0, tg at 0.65 and vk at 2.00, 3 numbers
    - ``c``: country 2, tg at 0.80, 1 number
    - ``d``: country 0, an ig offer without numbers (absent everywhere)
    """

    def __init__(self, hub: Hub) -> None:
        self.a = hub.provider("a")
        hub.offer(self.a, service="tg", price="0.50")
        hub.offer(self.a, service="wa", price="1.00")
        hub.numbers(self.a, ["79110000001", "79110000002"], operator="mts")
        self.b = hub.provider("b")
        hub.offer(self.b, service="tg", price="0.65")
        hub.offer(self.b, service="vk", price="2.00")
        hub.numbers(self.b, ["79220000001", "79220000002", "79220000003"], operator="beeline")
        self.c = hub.provider("c")
        hub.offer(self.c, service="tg", country=2, price="0.80")
        hub.numbers(self.c, ["77010000001"], country=2)
        self.d = hub.provider("d")
        hub.offer(self.d, service="ig", price="0.30")


def test_prices_empty(hub: Hub) -> None:
    key = hub.customer("10.00")
    for action in ("getPrices", "getPricesV2", "getPricesV3"):
        assert document(hub, key, action) == "{}"
        assert document(hub, key, action, service="tg") == "{}"
        assert document(hub, key, action, country=0) == "{}"
        assert document(hub, key, action, service="tg", country=0) == "{}"


def test_get_prices_full_and_filtered(hub: Hub) -> None:
    Market(hub)
    key = hub.customer("10.00")
    assert document(hub, key, "getPrices") == (
        '{"0":{"tg":{"cost":0.5,"count":5,"physicalCount":5},'
        '"vk":{"cost":2.0,"count":3,"physicalCount":3},'
        '"wa":{"cost":1.0,"count":2,"physicalCount":2}},'
        '"2":{"tg":{"cost":0.8,"count":1,"physicalCount":1}}}'
    )
    assert document(hub, key, "getPrices", service="tg") == (
        '{"0":{"tg":{"cost":0.5,"count":5,"physicalCount":5}},'
        '"2":{"tg":{"cost":0.8,"count":1,"physicalCount":1}}}'
    )
    assert document(hub, key, "getPrices", country=2) == (
        '{"2":{"tg":{"cost":0.8,"count":1,"physicalCount":1}}}'
    )
    assert document(hub, key, "getPrices", service="wa", country=0) == (
        '{"0":{"wa":{"cost":1.0,"count":2,"physicalCount":2}}}'
    )
    # Pairs without stock are absent, also when asked for by name.
    assert document(hub, key, "getPrices", service="ig") == "{}"
    assert document(hub, key, "getPrices", service="wa", country=2) == "{}"
    assert document(hub, key, "getPrices", country=16) == "{}"


def test_get_prices_follows_stock(hub: Hub) -> None:
    Market(hub)
    key = hub.customer("10.00")
    buy(hub, key)
    buy(hub, key)
    # a's two numbers are taken (for every service): tg now costs b's 0.65.
    assert document(hub, key, "getPrices", country=0) == (
        '{"0":{"tg":{"cost":0.65,"count":3,"physicalCount":3},'
        '"vk":{"cost":2.0,"count":3,"physicalCount":3}}}'
    )
    assert document(hub, key, "getPricesV3", service="wa") == "{}"
    assert document(hub, key, "getPricesV2", service="tg", country=0) == ('{"0":{"tg":{"0.65":3}}}')


def test_finished_number_is_not_offered_again_for_that_service(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50")
    hub.offer(seller, service="wa", price="0.70")
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    push = hub.push_sms(seller, phone, "Your code: 48213")
    assert push.status_code == 200
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert document(hub, key, "getPrices") == (
        '{"0":{"tg":{"cost":0.5,"count":1,"physicalCount":1},'
        '"wa":{"cost":0.7,"count":2,"physicalCount":2}}}'
    )


def test_get_prices_v2_levels(hub: Hub) -> None:
    Market(hub)
    # A fourth provider at a's price level: the levels add up.
    e = hub.provider("e")
    hub.offer(e, service="tg", price="0.50")
    hub.numbers(e, ["79330000001", "79330000002", "79330000003", "79330000004"])
    key = hub.customer("10.00")
    assert document(hub, key, "getPricesV2") == (
        '{"0":{"tg":{"0.50":6,"0.65":3},"vk":{"2.00":3},"wa":{"1.00":2}},"2":{"tg":{"0.80":1}}}'
    )
    assert document(hub, key, "getPricesV2", service="tg") == (
        '{"0":{"tg":{"0.50":6,"0.65":3}},"2":{"tg":{"0.80":1}}}'
    )
    assert document(hub, key, "getPricesV2", country=2) == '{"2":{"tg":{"0.80":1}}}'
    assert document(hub, key, "getPricesV2", service="vk", country=0) == ('{"0":{"vk":{"2.00":3}}}')
    assert document(hub, key, "getPricesV2", service="ig") == "{}"


def test_get_prices_v3_per_provider(hub: Hub) -> None:
    m = Market(hub)
    key = hub.customer("10.00")
    a, b, c = m.a.id, m.b.id, m.c.id
    assert document(hub, key, "getPricesV3") == (
        f'{{"0":{{"tg":{{"{a}":{{"count":2,"price":0.5,"provider_id":{a}}},'
        f'"{b}":{{"count":3,"price":0.65,"provider_id":{b}}}}},'
        f'"vk":{{"{b}":{{"count":3,"price":2.0,"provider_id":{b}}}}},'
        f'"wa":{{"{a}":{{"count":2,"price":1.0,"provider_id":{a}}}}}}},'
        f'"2":{{"tg":{{"{c}":{{"count":1,"price":0.8,"provider_id":{c}}}}}}}}}'
    )
    assert document(hub, key, "getPricesV3", service="tg", country=2) == (
        f'{{"2":{{"tg":{{"{c}":{{"count":1,"price":0.8,"provider_id":{c}}}}}}}}}'
    )
    parsed = json.loads(document(hub, key, "getPricesV3", service="tg", country=0))
    assert parsed == {
        "0": {
            "tg": {
                str(a): {"count": 2, "price": 0.5, "provider_id": a},
                str(b): {"count": 3, "price": 0.65, "provider_id": b},
            }
        }
    }
    assert document(hub, key, "getPricesV3", service="ig") == "{}"


def test_prices_same_price_several_providers(hub: Hub) -> None:
    first = hub.stocked(count=2, price="0.50", first_phone=79110000001)
    second = hub.stocked(count=1, price="0.50", first_phone=79220000001)
    key = hub.customer("10.00")
    assert document(hub, key, "getPrices") == (
        '{"0":{"tg":{"cost":0.5,"count":3,"physicalCount":3}}}'
    )
    assert document(hub, key, "getPricesV2") == '{"0":{"tg":{"0.50":3}}}'
    assert json.loads(document(hub, key, "getPricesV3")) == {
        "0": {
            "tg": {
                str(first.id): {"count": 2, "price": 0.5, "provider_id": first.id},
                str(second.id): {"count": 1, "price": 0.5, "provider_id": second.id},
            }
        }
    }


def test_prices_errors(hub: Hub) -> None:
    Market(hub)
    key = hub.customer("10.00")
    for action in ("getPrices", "getPricesV2", "getPricesV3"):
        assert word(hub, key, action, service="nosuch") == "BAD_SERVICE"
        assert word(hub, key, action, country="9999") == "BAD_COUNTRY"
        assert word(hub, key, action, country="abc") == "BAD_COUNTRY"
        assert word(hub, None, action) == "NO_KEY"
        assert word(hub, "ohc_" + "Z" * 30, action) == "BAD_KEY"
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:10.00"
