"""Byte-exact golden answers of the customer API (``/stubs/handler_api.php``), over real HTTP.

Every answer is compared whole, with its HTTP status (200, errors included) and, through
``word``/``document``, its exact Content-Type and the absence of a BOM or trailing newline.
The source of truth is the spec, customer-api.md; the clock is a ManualClock that starts at
2026-05-28 20:26:40 UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Select, func, select, update

from otphub.db.schema import activations, customers, providers
from otphub.services import accounts
from tests.api.answers import JSON, document, word
from tests.api.answers import exact as _exact
from tests.support import Hub, Seller

START = "2026-05-28 20:26:40"  # the ManualClock's first second, in UTC


# ---------------------------------------------------------------- helpers


def balance(hub: Hub, key: str) -> str:
    return word(hub, key, "getBalance")


def buy(hub: Hub, key: str, **params: Any) -> tuple[int, str]:
    body = word(hub, key, "getNumber", **{"service": "tg", **params})
    assert body.startswith("ACCESS_NUMBER:"), body
    _, activation_id, phone = body.split(":")
    return int(activation_id), phone


def rows(hub: Hub, query: Select[Any]) -> list[Any]:
    async def run() -> list[Any]:
        async with hub.rt.db.read() as conn:
            return list((await conn.execute(query)).all())

    return hub.call(run())


def activation_count(hub: Hub) -> int:
    return int(rows(hub, select(func.count()).select_from(activations))[0][0])


def only_activation_id(hub: Hub) -> int:
    found = rows(hub, select(activations.c.id))
    assert len(found) == 1, found
    return int(found[0][0])


def move_clock_to(hub: Hub, *when: int) -> None:
    year, month, day, hour, minute, second = when
    target = int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())
    assert target >= hub.clock.now()
    hub.clock.advance(target - hub.clock.now())


def set_customer_cap(hub: Hub, customer_id: int, cap: int | None) -> None:
    async def run() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(
                update(customers).where(customers.c.id == customer_id).values(max_live=cap)
            )

    hub.call(run())


def sms(hub: Hub, seller: Seller, phone: str, text: str, sms_id: int | None = None) -> None:
    response = hub.push_sms(seller, phone, text, sms_id)
    assert response.status_code == 200, response.text
    assert response.content == b'{"status":"SUCCESS"}'


# ---------------------------------------------------------------- authentication


def test_no_key(hub: Hub) -> None:
    assert word(hub, None, "getBalance") == "NO_KEY"
    assert word(hub, None, None) == "NO_KEY"
    assert word(hub, "", "getBalance") == "NO_KEY"
    assert word(hub, None, "getNumber", service="tg") == "NO_KEY"


def test_bad_key_unknown_and_malformed(hub: Hub) -> None:
    hub.customer("10.00")
    seller = hub.provider()
    assert word(hub, "ohc_" + "A" * 32, "getBalance") == "BAD_KEY"
    assert word(hub, "short", "getBalance") == "BAD_KEY"
    assert word(hub, "not a key!", "getBalance") == "BAD_KEY"
    assert word(hub, "x" * 300, "getBalance") == "BAD_KEY"
    assert word(hub, "ключ-неверный", "getBalance") == "BAD_KEY"
    # A provider's key is not a customer's key.
    assert word(hub, seller.key, "getBalance") == "BAD_KEY"
    # The key is checked before the action.
    assert word(hub, "ohc_" + "A" * 32, "noSuchAction") == "BAD_KEY"


def test_banned_until_zero_padded(hub: Hub) -> None:
    hub.stocked()
    customer_id, key = hub.customer_id("10.00")
    until = int(datetime(2026, 6, 1, 7, 5, 9, tzinfo=UTC).timestamp())
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=until))
    assert word(hub, key, "getBalance") == "BANNED:'2026-06-01 07-05-09'"
    assert word(hub, key, "getBalanceAndCashBack") == "BANNED:'2026-06-01 07-05-09'"
    assert word(hub, key, "getNumber", service="tg") == "BANNED:'2026-06-01 07-05-09'"
    assert word(hub, key, "getNumberV2", service="tg") == "BANNED:'2026-06-01 07-05-09'"
    assert word(hub, key, "getPrices") == "BANNED:'2026-06-01 07-05-09'"
    assert word(hub, key, "noSuchAction") == "BANNED:'2026-06-01 07-05-09'"
    assert activation_count(hub) == 0
    move_clock_to(hub, 2026, 6, 1, 7, 5, 9)
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_ban_in_the_past_is_no_ban(hub: Hub) -> None:
    customer_id, key = hub.customer_id("10.00")
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=hub.clock.now() - 3600))
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=None))
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_bad_action(hub: Hub) -> None:
    key = hub.customer("10.00")
    assert word(hub, key, "getFooBar") == "BAD_ACTION"
    assert word(hub, key, None) == "BAD_ACTION"
    assert word(hub, key, "") == "BAD_ACTION"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_activation_type_other_than_sms_is_bad_action(hub: Hub) -> None:
    hub.stocked()
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg", activationType=1) == "BAD_ACTION"
    assert word(hub, key, "getNumber", service="tg", activationType=2) == "BAD_ACTION"
    assert word(hub, key, "getNumberV2", service="tg", activationType=1) == "BAD_ACTION"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0
    buy(hub, key, activationType=0)
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


# ---------------------------------------------------------------- balance


def test_get_balance(hub: Hub) -> None:
    for amount, answer in (
        ("100.00", "ACCESS_BALANCE:100.00"),
        ("0.00", "ACCESS_BALANCE:0.00"),
        ("12.5", "ACCESS_BALANCE:12.50"),
        ("0.05", "ACCESS_BALANCE:0.05"),
        ("1234567.89", "ACCESS_BALANCE:1234567.89"),
    ):
        key = hub.customer(amount)
        assert word(hub, key, "getBalance") == answer
        assert word(hub, key, "getBalanceAndCashBack") == answer


def test_balance_shows_available_after_hold(hub: Hub) -> None:
    hub.stocked(price="0.35", payout=None)
    key = hub.customer("1.00")
    buy(hub, key)
    assert balance(hub, key) == "ACCESS_BALANCE:0.65"
    buy(hub, key)
    assert balance(hub, key) == "ACCESS_BALANCE:0.30"
    assert word(hub, key, "getBalanceAndCashBack") == "ACCESS_BALANCE:0.30"


# ---------------------------------------------------------------- getNumber


def test_get_number_answer(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("10.00")
    body = word(hub, key, "getNumber", service="tg")
    assert body == f"ACCESS_NUMBER:{only_activation_id(hub)}:79000000001"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    second = word(hub, key, "getNumber", service="tg", country=0)
    assert second.startswith("ACCESS_NUMBER:")
    assert second.endswith(":79000000002")
    assert int(second.split(":")[1]) > int(body.split(":")[1])
    assert balance(hub, key) == "ACCESS_BALANCE:9.00"


def test_get_number_other_country(hub: Hub) -> None:
    hub.stocked(country=2, first_phone=77010000001, price="0.80")
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg") == "NO_NUMBERS"
    activation_id, phone = buy(hub, key, country=2)
    assert phone == "77010000001"
    assert rows(hub, select(activations.c.country_id).where(activations.c.id == activation_id)) == [
        (2,)
    ]
    assert balance(hub, key) == "ACCESS_BALANCE:9.20"


def test_get_number_takes_the_cheapest_offer(hub: Hub) -> None:
    dear = hub.stocked(price="0.65", first_phone=79110000001)
    cheap = hub.stocked(price="0.50", first_phone=79220000001)
    dearest = hub.stocked(price="0.90", first_phone=79330000001)
    key = hub.customer("10.00")
    assert buy(hub, key)[1] == "79220000001"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    # providerIds / exceptProviderIds steer the choice; the price follows the offer.
    assert buy(hub, key, providerIds=f"{dear.id}")[1] == "79110000001"
    assert balance(hub, key) == "ACCESS_BALANCE:8.85"
    assert buy(hub, key, exceptProviderIds=f"{cheap.id},{dear.id}")[1] == "79330000001"
    assert balance(hub, key) == "ACCESS_BALANCE:7.95"
    assert buy(hub, key, providerIds=f"{dearest.id},{dear.id}")[1] == "79110000002"
    assert balance(hub, key) == "ACCESS_BALANCE:7.30"


def test_get_number_operator_filter(hub: Hub) -> None:
    hub.stocked(count=1, operator="mts", first_phone=79110000001)
    hub.stocked(count=1, operator="beeline", first_phone=79220000001, price="0.70")
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg", operator="megafon") == "NO_NUMBERS"
    assert word(hub, key, "getNumber", service="tg", operator="tele2,megafon") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert buy(hub, key, operator="beeline")[1] == "79220000001"
    assert balance(hub, key) == "ACCESS_BALANCE:9.30"
    assert word(hub, key, "getNumber", service="tg", operator="beeline") == "NO_NUMBERS"
    assert buy(hub, key, operator="megafon,MTS")[1] == "79110000001"
    assert balance(hub, key) == "ACCESS_BALANCE:8.80"


def test_get_number_operator_any(hub: Hub) -> None:
    hub.stocked(count=1, operator="beeline")
    key = hub.customer("10.00")
    assert buy(hub, key, operator="any")[1] == "79000000001"


def test_get_number_phone_exception(hub: Hub) -> None:
    seller = hub.provider()
    hub.offer(seller, price="0.50")
    hub.numbers(seller, ["79181234567", "79001112233"], operator="mts")
    key = hub.customer("10.00")
    assert buy(hub, key, phoneException="7918")[1] == "79001112233"
    assert word(hub, key, "getNumber", service="tg", phoneException="7918") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert buy(hub, key, phoneException="7900111,7917")[1] == "79181234567"


def test_get_number_phone_exception_excluding_all(hub: Hub) -> None:
    hub.stocked(count=3)
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg", phoneException="7900") == "NO_NUMBERS"
    assert word(hub, key, "getNumber", service="tg", phoneException="7918,790000") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0


def test_wrong_exception_phone(hub: Hub) -> None:
    hub.stocked()
    key = hub.customer("10.00")
    for prefixes in ("79", "abc", "+7918", "8918", "7918,abc", "79181234567", "7-918", "7 918x"):
        for action in ("getNumber", "getNumberV2"):
            assert word(hub, key, action, service="tg", phoneException=prefixes) == (
                "WRONG_EXCEPTION_PHONE"
            ), (action, prefixes)
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0


def test_bad_service(hub: Hub) -> None:
    hub.stocked()
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="nosuchservice") == "BAD_SERVICE"
    assert word(hub, key, "getNumber") == "BAD_SERVICE"
    assert word(hub, key, "getNumber", service="TG") == "BAD_SERVICE"
    assert word(hub, key, "getNumberV2", service="nosuchservice") == "BAD_SERVICE"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0


def test_bad_country(hub: Hub) -> None:
    hub.stocked()
    key = hub.customer("10.00")
    for country in ("9999", "abc", "-1", "1.5", "0x1"):
        for action in ("getNumber", "getNumberV2"):
            assert word(hub, key, action, service="tg", country=country) == "BAD_COUNTRY", (
                action,
                country,
            )
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0


def test_no_numbers_without_any_stock(hub: Hub) -> None:
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg") == "NO_NUMBERS"
    # An offer without numbers is no stock either; nor is stock for another service.
    seller = hub.provider()
    hub.offer(seller, service="tg", price="0.50")
    assert word(hub, key, "getNumber", service="tg") == "NO_NUMBERS"
    hub.stocked(service="wa")
    assert word(hub, key, "getNumber", service="vk") == "NO_NUMBERS"
    assert word(hub, key, "getNumberV2", service="vk") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_no_numbers_when_all_sold(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    buy(hub, key)
    assert word(hub, key, "getNumber", service="tg") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_no_numbers_provider_filters(hub: Hub) -> None:
    first = hub.stocked(first_phone=79110000001)
    second = hub.stocked(first_phone=79220000001)
    key = hub.customer("10.00")
    unknown = first.id + second.id + 1000
    for params in (
        {"providerIds": str(unknown)},
        {"exceptProviderIds": f"{first.id},{second.id}"},
        {"providerIds": str(first.id), "exceptProviderIds": str(first.id)},
        {"providerIds": "abc"},
    ):
        assert word(hub, key, "getNumber", service="tg", **params) == "NO_NUMBERS", params
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0


def test_wrong_max_price(hub: Hub) -> None:
    hub.stocked(price="0.50", first_phone=79110000001)
    hub.stocked(price="0.75", first_phone=79220000001)
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg", maxPrice="0.49") == "WRONG_MAX_PRICE:0.50"
    assert word(hub, key, "getNumber", service="tg", max_price="0.1") == "WRONG_MAX_PRICE:0.50"
    assert word(hub, key, "getNumberV2", service="tg", maxPrice="0") == "WRONG_MAX_PRICE:0.50"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert activation_count(hub) == 0
    # At the price exactly, it sells; a ceiling above the cheapest still buys the cheapest.
    assert buy(hub, key, maxPrice="0.5")[1] == "79110000001"
    assert buy(hub, key, maxPrice="5")[1] == "79110000002"
    assert balance(hub, key) == "ACCESS_BALANCE:9.00"


@pytest.mark.parametrize("ceiling", ["abc", "0,60", "-1", "NaN"])
def test_an_unreadable_max_price_is_a_ceiling_of_zero(hub: Hub, ceiling: str) -> None:
    """Refusing to buy is safer than buying without the limit the customer meant."""
    hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg", maxPrice=ceiling) == "WRONG_MAX_PRICE:0.50"
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:10.00"


def test_wrong_max_price_names_the_cheapest_that_matches_the_filters(hub: Hub) -> None:
    hub.stocked(price="0.50", operator="mts", first_phone=79110000001)
    hub.stocked(price="1.20", operator="beeline", first_phone=79220000001)
    key = hub.customer("10.00")
    assert word(hub, key, "getNumber", service="tg", operator="beeline", maxPrice="0.60") == (
        "WRONG_MAX_PRICE:1.20"
    )
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_no_balance(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    key = hub.customer("0.49")
    broke = hub.customer("0.00")
    assert word(hub, key, "getNumber", service="tg") == "NO_BALANCE"
    assert word(hub, key, "getNumberV2", service="tg") == "NO_BALANCE"
    assert word(hub, broke, "getNumber", service="tg") == "NO_BALANCE"
    assert balance(hub, key) == "ACCESS_BALANCE:0.49"
    assert balance(hub, broke) == "ACCESS_BALANCE:0.00"
    assert activation_count(hub) == 0
    # The number was not taken by the refused purchase.
    assert document(hub, key, "getPrices", service="tg") == (
        '{"0":{"tg":{"cost":0.5,"count":1,"physicalCount":1}}}'
    )
    exact = hub.customer("0.50")
    assert buy(hub, exact)[1] == "79000000001"
    assert balance(hub, exact) == "ACCESS_BALANCE:0.00"


def test_no_balance_counts_holds(hub: Hub) -> None:
    hub.stocked(count=3, price="0.60")
    key = hub.customer("1.00")
    buy(hub, key)
    assert word(hub, key, "getNumber", service="tg") == "NO_BALANCE"
    assert balance(hub, key) == "ACCESS_BALANCE:0.40"


def test_customer_cap_channels_limit(hub: Hub) -> None:
    hub.stocked(count=3)
    customer_id, key = hub.customer_id("10.00")
    set_customer_cap(hub, customer_id, 1)
    activation_id, _ = buy(hub, key)
    assert word(hub, key, "getNumber", service="tg") == "CHANNELS_LIMIT"
    assert word(hub, key, "getNumberV2", service="tg", orderId="x") == "CHANNELS_LIMIT"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert activation_count(hub) == 1
    # The refused orderId was not consumed.
    hub.clock.advance(120)
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert document(hub, key, "getNumberV2", service="tg", orderId="x").startswith("{")
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


# ---------------------------------------------------------------- getNumberV2


def test_get_number_v2_answer(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50", operator="mts")
    key = hub.customer("10.00")
    move_clock_to(hub, 2026, 6, 1, 7, 5, 9)
    body = document(hub, key, "getNumberV2", service="tg")
    activation_id = only_activation_id(hub)
    assert body == (
        f'{{"activationId":{activation_id},"phoneNumber":"79000000001","activationCost":0.5,'
        '"currency":840,"countryCode":"0","countryPhoneCode":7,"canGetAnotherSms":true,'
        '"activationTime":"2026-06-01 07:05:09","activationEndTime":"2026-06-01 07:25:09",'
        '"activationOperator":"mts"}'
    )
    parsed = json.loads(body)
    assert [type(v) for v in parsed.values()] == [
        int,
        str,
        float,
        int,
        str,
        int,
        bool,
        str,
        str,
        str,
    ]
    assert parsed["activationId"] == activation_id
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"


def test_get_number_v2_other_country_without_operator(hub: Hub) -> None:
    seller = hub.provider()
    hub.offer(seller, service="wa", country=16, price="1.25")
    hub.numbers(seller, ["447700900001"], country=16)
    key = hub.customer("10.00")
    body = document(hub, key, "getNumberV2", service="wa", country=16)
    assert body == (
        f'{{"activationId":{only_activation_id(hub)},"phoneNumber":"447700900001",'
        '"activationCost":1.25,"currency":840,"countryCode":"16","countryPhoneCode":44,'
        f'"canGetAnotherSms":true,"activationTime":"{START}",'
        '"activationEndTime":"2026-05-28 20:46:40","activationOperator":"any"}'
    )
    assert balance(hub, key) == "ACCESS_BALANCE:8.75"


def test_get_number_v2_whole_price(hub: Hub) -> None:
    hub.stocked(count=1, price="2.00", payout="1.50")
    key = hub.customer("10.00")
    parsed = json.loads(document(hub, key, "getNumberV2", service="tg"))
    assert parsed["activationCost"] == 2
    assert balance(hub, key) == "ACCESS_BALANCE:8.00"


def test_order_already_exists(hub: Hub) -> None:
    hub.stocked(count=5)
    key = hub.customer("10.00")
    other = hub.customer("10.00")
    first = json.loads(document(hub, key, "getNumberV2", service="tg", orderId="order-1"))
    assert first["phoneNumber"] == "79000000001"
    assert word(hub, key, "getNumberV2", service="tg", orderId="order-1") == (
        "ORDER_ALREADY_EXISTS"
    )
    assert word(hub, key, "getNumberV2", service="wa", orderId="order-1") == (
        "ORDER_ALREADY_EXISTS"
    )
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert activation_count(hub) == 1
    # Another customer may use the same orderId.
    theirs = json.loads(document(hub, other, "getNumberV2", service="tg", orderId="order-1"))
    assert theirs["phoneNumber"] == "79000000002"
    assert balance(hub, other) == "ACCESS_BALANCE:9.50"
    # Another orderId buys again.
    document(hub, key, "getNumberV2", service="tg", orderId="order-2")
    assert balance(hub, key) == "ACCESS_BALANCE:9.00"
    # Still refused after the first activation has ended.
    hub.clock.advance(120)
    assert word(hub, key, "setStatus", id=first["activationId"], status=8) == "ACCESS_CANCEL"
    assert word(hub, key, "getNumberV2", service="tg", orderId="order-1") == (
        "ORDER_ALREADY_EXISTS"
    )
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_refused_purchase_does_not_consume_the_order_id(hub: Hub) -> None:
    key = hub.customer("10.00")
    assert word(hub, key, "getNumberV2", service="tg", orderId="retry-me") == "NO_NUMBERS"
    hub.stocked(count=1)
    body = json.loads(document(hub, key, "getNumberV2", service="tg", orderId="retry-me"))
    assert body["phoneNumber"] == "79000000001"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_get_number_ignores_order_id(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("10.00")
    buy(hub, key, orderId="same")
    buy(hub, key, orderId="same")
    assert balance(hub, key) == "ACCESS_BALANCE:9.00"


# ---------------------------------------------------------------- ref


def _ref_and_order(hub: Hub, activation_id: int) -> tuple[Any, Any]:
    found = rows(
        hub,
        select(activations.c.ref, activations.c.order_id).where(activations.c.id == activation_id),
    )
    ref, order_id = found[0]
    return ref, order_id


def test_ref_is_recorded(hub: Hub) -> None:
    hub.stocked(count=3)
    key = hub.customer("10.00")
    with_ref, _ = buy(hub, key, ref="partner-42")
    without_ref, _ = buy(hub, key)
    empty_ref, _ = buy(hub, key, ref="")
    assert _ref_and_order(hub, with_ref) == ("partner-42", None)
    assert _ref_and_order(hub, without_ref) == (None, None)
    assert _ref_and_order(hub, empty_ref) == (None, None)


def test_ref_is_recorded_by_get_number_v2(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    body = json.loads(document(hub, key, "getNumberV2", service="tg", ref="r77", orderId="o1"))
    assert _ref_and_order(hub, body["activationId"]) == ("r77", "o1")


# ---------------------------------------------------------------- getStatus and setStatus


def test_status_lifecycle_with_retry_and_finish(hub: Hub) -> None:
    seller = hub.stocked(count=1, price="0.50", payout="0.40")
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert word(hub, key, "setStatus", id=activation_id, status=1) == "ACCESS_READY"
    assert word(hub, key, "setStatus", id=activation_id, status=1) == "ACCESS_READY"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    sms(hub, seller, phone, "Your Telegram code: 48213")
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_OK:48213"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_RETRY:48213"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_RETRY:48213"
    sms(hub, seller, phone, "Your Telegram code: 55021")
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_OK:55021"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    # A repeat of 6 answers the same and moves no money.
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_latest_code_wins(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    sms(hub, seller, phone, "code 1111")
    sms(hub, seller, phone, "code 2222")
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_OK:2222"


def test_finish_from_retry(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    sms(hub, seller, phone, "Your code: 777111")
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


@pytest.mark.parametrize("cancel", ["8", "-1"])
def test_cancel_after_the_early_cancel_window(hub: Hub, cancel: str) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    assert word(hub, key, "setStatus", id=activation_id, status=cancel) == "EARLY_CANCEL_DENIED"
    hub.clock.advance(119)
    assert word(hub, key, "setStatus", id=activation_id, status=cancel) == "EARLY_CANCEL_DENIED"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    hub.clock.advance(1)
    assert word(hub, key, "setStatus", id=activation_id, status=cancel) == "ACCESS_CANCEL"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    # Repeats (with either word) answer the same and refund nothing more.
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert word(hub, key, "setStatus", id=activation_id, status=-1) == "ACCESS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    # The number is for sale again, to everyone but the customer who cancelled it (the
    # cancelled-numbers rule).
    assert word(hub, key, "getNumber", service="tg") == "NO_NUMBERS"
    assert buy(hub, hub.customer("10.00", name="other"))[1] == "79000000001"


def test_cancel_after_a_code_is_bad_status(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    sms(hub, seller, phone, "Your code: 48213")
    hub.clock.advance(300)
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=activation_id, status=-1) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=activation_id, status=1) == "BAD_STATUS"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_OK:48213"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "BAD_STATUS"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_RETRY:48213"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_finish_before_a_code_is_bad_status(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "BAD_STATUS"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_no_move_between_ended_states(hub: Hub) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer("10.00")
    finished, phone = buy(hub, key)
    cancelled, _ = buy(hub, key)
    sms(hub, seller, phone, "Your code: 48213")
    assert word(hub, key, "setStatus", id=finished, status=6) == "ACCESS_ACTIVATION"
    hub.clock.advance(120)
    assert word(hub, key, "setStatus", id=cancelled, status=8) == "ACCESS_CANCEL"
    assert word(hub, key, "setStatus", id=finished, status=8) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=finished, status=3) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=finished, status=1) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=cancelled, status=6) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=cancelled, status=3) == "BAD_STATUS"
    assert word(hub, key, "setStatus", id=cancelled, status=1) == "BAD_STATUS"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_bad_status_values(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    hub.clock.advance(200)
    for status in ("5", "abc", None, "2", "0", "4", "1.0", "66", "-8"):
        assert word(hub, key, "setStatus", id=activation_id, status=status) == "BAD_STATUS", status
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_wrong_activation_id(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    buy(hub, key)
    for bad_id in ("abc", "1.5", "12abc", "0x10"):
        assert word(hub, key, "setStatus", id=bad_id, status=6) == "WRONG_ACTIVATION_ID"
        assert word(hub, key, "getStatus", id=bad_id) == "WRONG_ACTIVATION_ID"
        assert word(hub, key, "getStatusV2", id=bad_id) == "WRONG_ACTIVATION_ID"
        assert word(hub, key, "getFullSms", id=bad_id) == "WRONG_ACTIVATION_ID"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_no_activation_unknown_and_another_customers(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    owner = hub.customer("10.00")
    intruder = hub.customer("10.00")
    activation_id, phone = buy(hub, owner)
    hub.clock.advance(200)
    for key, wanted in ((owner, activation_id + 1000), (owner, -5), (intruder, activation_id)):
        assert word(hub, key, "getStatus", id=wanted) == "NO_ACTIVATION"
        assert word(hub, key, "getStatusV2", id=wanted) == "NO_ACTIVATION"
        assert word(hub, key, "getFullSms", id=wanted) == "NO_ACTIVATION"
        for status in (1, 3, 6, 8, -1):
            assert word(hub, key, "setStatus", id=wanted, status=status) == "NO_ACTIVATION"
    # The intruder changed nothing.
    assert word(hub, owner, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert balance(hub, owner) == "ACCESS_BALANCE:9.50"
    assert balance(hub, intruder) == "ACCESS_BALANCE:10.00"
    sms(hub, seller, phone, "Your code: 48213")
    assert word(hub, intruder, "getStatus", id=activation_id) == "NO_ACTIVATION"
    assert word(hub, intruder, "getFullSms", id=activation_id) == "NO_ACTIVATION"
    assert word(hub, owner, "getStatus", id=activation_id) == "STATUS_OK:48213"


# ---------------------------------------------------------------- expiry


def test_expiry_without_code_cancels(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    hub.clock.advance(1199)
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    hub.clock.advance(1)
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert word(hub, key, "getStatusV2", id=activation_id) == "STATUS_CANCEL"
    assert word(hub, key, "getFullSms", id=activation_id) == "STATUS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_expiry_with_code_finishes(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    hub.clock.advance(60)
    sms(hub, seller, phone, "Your code: 48213")
    hub.clock.advance(1140)
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert document(hub, key, "getStatusV2", id=activation_id) == (
        '{"verificationType":0,"sms":{"dateTime":"2026-05-28 20:27:40","code":"48213",'
        '"text":"Your code: 48213"},"call":null}'
    )
    assert word(hub, key, "getFullSms", id=activation_id) == "FULL_SMS:Your code: 48213"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "BAD_STATUS"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_set_status_on_an_overdue_activation_resolves_it_first(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    hub.clock.advance(1200)
    assert word(hub, key, "setStatus", id=activation_id, status=1) == "BAD_STATUS"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


# ---------------------------------------------------------------- getStatusV2


def test_get_status_v2(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    waiting = '{"verificationType":0,"sms":null,"call":null}'
    assert document(hub, key, "getStatusV2", id=activation_id) == waiting
    move_clock_to(hub, 2026, 5, 28, 20, 31, 5)
    sms(hub, seller, phone, "Telegram code: 12345")
    with_sms = (
        '{"verificationType":0,"sms":{"dateTime":"2026-05-28 20:31:05","code":"12345",'
        '"text":"Telegram code: 12345"},"call":null}'
    )
    assert document(hub, key, "getStatusV2", id=activation_id) == with_sms
    assert json.loads(with_sms)["sms"]["code"] == "12345"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert document(hub, key, "getStatusV2", id=activation_id) == with_sms
    hub.clock.advance(20)
    sms(hub, seller, phone, "Telegram code: 67890")
    newer = (
        '{"verificationType":0,"sms":{"dateTime":"2026-05-28 20:31:25","code":"67890",'
        '"text":"Telegram code: 67890"},"call":null}'
    )
    assert document(hub, key, "getStatusV2", id=activation_id) == newer
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    # The code of a finished activation is still shown.
    assert document(hub, key, "getStatusV2", id=activation_id) == newer


def test_get_status_v2_cancelled_is_plain_word(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, _ = buy(hub, key)
    hub.clock.advance(120)
    assert word(hub, key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert word(hub, key, "getStatusV2", id=activation_id) == "STATUS_CANCEL"


def test_get_status_v2_unicode_text(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    sms(hub, seller, phone, "Ваш код: 4821 — никому не сообщайте")
    response = hub.api(key, "getStatusV2", id=activation_id)
    assert _exact(response, JSON) == (
        f'{{"verificationType":0,"sms":{{"dateTime":"{START}","code":"4821",'
        '"text":"Ваш код: 4821 — никому не сообщайте"},"call":null}'
    )
    assert "Ваш".encode() in response.content


# ---------------------------------------------------------------- getFullSms


def test_get_full_sms(hub: Hub) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    assert word(hub, key, "getFullSms", id=activation_id) == "STATUS_WAIT_CODE"
    sms(hub, seller, phone, "Your Telegram code: 48213. Do not share it")
    assert word(hub, key, "getFullSms", id=activation_id) == (
        "FULL_SMS:Your Telegram code: 48213. Do not share it"
    )
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "getFullSms", id=activation_id) == (
        "FULL_SMS:Your Telegram code: 48213. Do not share it"
    )
    sms(hub, seller, phone, "Telegram: 90817")
    assert word(hub, key, "getFullSms", id=activation_id) == "FULL_SMS:Telegram: 90817"
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert word(hub, key, "getFullSms", id=activation_id) == "FULL_SMS:Telegram: 90817"
    # Cancelled without an SMS.
    cancelled, _ = buy(hub, key)
    hub.clock.advance(120)
    assert word(hub, key, "setStatus", id=cancelled, status=8) == "ACCESS_CANCEL"
    assert word(hub, key, "getFullSms", id=cancelled) == "STATUS_CANCEL"


# ---------------------------------------------------------------- code extraction


CODES = (
    ("Your Telegram code: 48213", "48213"),
    ("Your code: 48213", "48213"),
    ("Telegram code 991-204", "991204"),
    ("Telegram code 991 204", "991204"),
    ("G-123456 is your Google verification code", "123456"),
    ("Welcome to Service: enjoy", "Welcome to Service  enjoy"),
    ("no code here", "no code here"),
    ("a:b:c", "a b c"),
)


def test_code_extraction_end_to_end(hub: Hub) -> None:
    seller = hub.stocked(count=len(CODES))
    key = hub.customer("10.00")
    for text, code in CODES:
        activation_id, phone = buy(hub, key)
        sms(hub, seller, phone, text)
        assert word(hub, key, "getStatus", id=activation_id) == f"STATUS_OK:{code}", text
        assert word(hub, key, "getFullSms", id=activation_id) == f"FULL_SMS:{text}"
        assert json.loads(document(hub, key, "getStatusV2", id=activation_id))["sms"] == {
            "dateTime": START,
            "code": code,
            "text": text,
        }
        assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
        assert word(hub, key, "getStatus", id=activation_id) == f"STATUS_WAIT_RETRY:{code}"
        assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"


def test_new_sms_during_retry_moves_back_to_ok(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    sms(hub, seller, phone, "G-123456 is your Google verification code")
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_OK:123456"
    assert word(hub, key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_WAIT_RETRY:123456"
    sms(hub, seller, phone, "Telegram code 991-204")
    assert word(hub, key, "getStatus", id=activation_id) == "STATUS_OK:991204"
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


# ---------------------------------------------------------------- prices and holds


def test_a_price_change_affects_new_purchases_only(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50", payout="0.40")
    key = hub.customer("10.00")
    activation_id, phone = buy(hub, key)
    hub.offer(seller, price="0.80", payout="0.60")
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    sms(hub, seller, phone, "Your code: 48213")
    assert word(hub, key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert word(hub, key, "getNumber", service="tg", maxPrice="0.50") == "WRONG_MAX_PRICE:0.80"
    buy(hub, key)
    assert balance(hub, key) == "ACCESS_BALANCE:8.70"


def test_price_ties_go_to_the_best_delivery_record(hub: Hub) -> None:
    poor = hub.stocked(count=3, price="0.50", first_phone=79110000001)
    good = hub.stocked(count=3, price="0.50", first_phone=79220000001)

    async def scores() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(
                update(providers).where(providers.c.id == poor.id).values(delivery_score=100)
            )
            await conn.execute(
                update(providers).where(providers.c.id == good.id).values(delivery_score=900)
            )

    hub.call(scores())
    key = hub.customer("10.00")
    assert [buy(hub, key)[1] for _ in range(4)] == [
        "79220000001",
        "79220000002",
        "79220000003",
        "79110000001",
    ]


# ---------------------------------------------------------------- input limits


def test_wrong_activation_id_for_non_ascii_digits(hub: Hub) -> None:
    """Python's int() reads "1_0", "١" (Arabic-Indic one) and "１" (fullwidth one); the
    protocol's ids are ASCII digits, anything else is non-numeric."""
    hub.stocked(count=1)
    key = hub.customer("10.00")
    buy(hub, key)
    for bad_id in ("1_0", "\u0661", "\uff11"):
        assert word(hub, key, "getStatus", id=bad_id) == "WRONG_ACTIVATION_ID", bad_id
        assert word(hub, key, "setStatus", id=bad_id, status=1) == "WRONG_ACTIVATION_ID"


def test_a_long_ref_does_not_break_the_purchase(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("10.00")
    body = word(hub, key, "getNumber", service="tg", ref="r" * 200)
    assert body.startswith("ACCESS_NUMBER:"), body
    assert body == f"ACCESS_NUMBER:{only_activation_id(hub)}:79000000001"
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_a_long_order_id_is_still_an_idempotency_key(hub: Hub) -> None:
    hub.stocked(count=3)
    key = hub.customer("10.00")
    first = "o" * 200
    second = "o" * 199 + "p"  # differs only after the 128th character
    answer = hub.api(key, "getNumberV2", service="tg", orderId=first).text
    assert answer.startswith("{"), answer
    assert word(hub, key, "getNumberV2", service="tg", orderId=first) == "ORDER_ALREADY_EXISTS"
    answer = hub.api(key, "getNumberV2", service="tg", orderId=second).text
    assert answer.startswith("{"), answer
    assert json.loads(answer)["phoneNumber"] == "79000000002"
    assert balance(hub, key) == "ACCESS_BALANCE:9.00"
