"""Byte-exact answers of the read-only actions: countries, services, operators, stock,
active activations and history.

Times are written out as literals, never computed with the server's own formatter (a
formatter that dropped the seconds or ignored the zone would agree with itself): the clock
is moved to the instant of the specification's examples, 2026-06-01 17:30:57 UTC, and each
answer is checked in UTC and in a deployment zone off UTC by a fraction of an hour or by a
whole date."""

from __future__ import annotations

import json

import pytest

from tests.support import Hub

JSON = "application/json; charset=utf-8"
SPEC_INSTANT = 1_780_335_057  # 2026-06-01 17:30:57 UTC


def move_clock_to_spec_instant(hub: Hub) -> None:
    assert hub.clock.now() <= SPEC_INSTANT, "the manual clock never goes back"
    hub.clock.advance(SPEC_INSTANT - hub.clock.now())


def test_get_countries(hub: Hub) -> None:
    key = hub.customer()
    response = hub.api(key, "getCountries")
    assert response.headers["content-type"] == JSON
    countries = response.json()
    assert len(countries) == 200
    assert countries["0"] == {
        "id": 0,
        "rus": "Russia",
        "eng": "Russia",
        "chn": "Russia",
        "visible": 1,
        "retry": 1,
        "rent": 0,
        "multiService": 0,
    }
    assert response.text.startswith('{"0":{"id":0,"rus":"Russia","eng":"Russia"')


def test_get_services_list(hub: Hub) -> None:
    seller = hub.stocked(service="tg")
    hub.offer(seller, service="wa", country=2, price="0.20")
    key = hub.customer()
    everything = hub.api(key, "getServicesList").json()
    assert everything["status"] == "success"
    assert {"code": "tg", "name": "Telegram"} in everything["services"]
    assert len(everything["services"]) == 532
    assert hub.say(key, "getServicesList", country=0) == (
        '{"status":"success","services":[{"code":"tg","name":"Telegram"}]}'
    )
    assert hub.say(key, "getServicesList", country=2) == (
        '{"status":"success","services":[{"code":"wa","name":"Whatsapp"}]}'
    )
    assert hub.say(key, "getServicesList", country=999) == "BAD_COUNTRY"


def test_get_operators(hub: Hub) -> None:
    key = hub.customer()
    assert hub.say(key, "getOperators") == "OPERATORS_NOT_FOUND"
    seller = hub.stocked(count=1, operator="mts")
    hub.numbers(seller, ["79110000001"], operator="beeline")
    hub.numbers(seller, ["77010000001"], country=2, operator="kcell")
    hub.numbers(seller, ["77010000002"], country=2)  # no operator: not listed
    assert hub.say(key, "getOperators") == (
        '{"status":"success","countryOperators":{"0":["beeline","mts"],"2":["kcell"]}}'
    )
    assert hub.say(key, "getOperators", country=2) == (
        '{"status":"success","countryOperators":{"2":["kcell"]}}'
    )
    assert hub.say(key, "getOperators", country=5) == "OPERATORS_NOT_FOUND"


def test_get_numbers_status(hub: Hub) -> None:
    seller = hub.stocked(count=3, operator="mts")
    hub.offer(seller, service="wa", price="0.20")
    hub.numbers(seller, ["79110000001"], operator="beeline")
    key = hub.customer()
    assert hub.say(key, "getNumbersStatus") == '{"tg_0":"4","wa_0":"4"}'
    assert hub.say(key, "getNumbersStatus", country=0, operator="beeline") == (
        '{"tg_0":"1","wa_0":"1"}'
    )
    assert hub.say(key, "getNumbersStatus", country=2) == "{}"


def test_get_top_countries_by_service(hub: Hub) -> None:
    hub.stocked(count=2, country=0, price="0.50")
    hub.stocked(count=3, country=2, price="0.70", first_phone=77000000001)
    key = hub.customer()
    assert hub.say(key, "getTopCountriesByService", service="tg") == (
        '{"2":{"country":2,"count":3,"physicalCount":3,"price":0.7,"retail_price":0.7},'
        '"0":{"country":0,"count":2,"physicalCount":2,"price":0.5,"retail_price":0.5}}'
    )
    assert hub.say(key, "getTopCountriesByService", service="wa") == "{}"
    assert hub.say(key, "getTopCountriesByService") == "BAD_SERVICE"
    assert hub.say(key, "getTopCountriesByService", service="nope") == "BAD_SERVICE"


@pytest.mark.parametrize(
    ("hub_settings", "first_time", "second_time"),
    [
        ({}, "2026-06-01 17:30:57", "2026-06-01 17:31:40"),
        ({"time_zone": "Asia/Kolkata"}, "2026-06-01 23:00:57", "2026-06-01 23:01:40"),
    ],
    ids=["UTC", "Asia/Kolkata"],
)
def test_get_active_activations(hub: Hub, first_time: str, second_time: str) -> None:
    seller = hub.stocked(count=3)
    key = hub.customer()
    assert hub.say(key, "getActiveActivations") == "NO_ACTIVATIONS"
    move_clock_to_spec_instant(hub)
    first, phone = hub.buy(key)
    hub.clock.advance(43)
    second, _ = hub.buy(key)
    hub.push_sms(seller, phone, "Telegram code: 12345")
    answer = hub.api(key, "getActiveActivations")
    assert answer.headers["content-type"] == JSON
    assert answer.text == json.dumps(
        {
            "status": "success",
            "activeActivations": [
                {
                    "activationId": str(first),
                    "serviceCode": "tg",
                    "phoneNumber": phone,
                    "activationCost": 0.5,
                    "activationStatus": "2",
                    "smsCode": ["12345"],
                    "smsText": "Telegram code: 12345",
                    "activationTime": first_time,
                    "discount": "0.00",
                    "repeated": "0",
                    "countryCode": "0",
                    "countryName": "Russia",
                    "canGetAnotherSms": "1",
                    "currency": 840,
                },
                {
                    "activationId": str(second),
                    "serviceCode": "tg",
                    "phoneNumber": "79000000002",
                    "activationCost": 0.5,
                    "activationStatus": "4",
                    "smsCode": None,
                    "smsText": None,
                    "activationTime": second_time,
                    "discount": "0.00",
                    "repeated": "0",
                    "countryCode": "0",
                    "countryName": "Russia",
                    "canGetAnotherSms": "1",
                    "currency": 840,
                },
            ],
        },
        separators=(",", ":"),
    )
    # Another customer sees none of them.
    assert hub.say(hub.customer(), "getActiveActivations") == "NO_ACTIVATIONS"
    # After the deadline they are resolved, not listed.
    hub.clock.advance(1200)
    assert hub.say(key, "getActiveActivations") == "NO_ACTIVATIONS"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.50"


@pytest.mark.parametrize(
    ("hub_settings", "finished_date", "cancelled_date"),
    [
        ({}, "2026-06-01 17:30:57", "2026-06-01 17:34:17"),
        ({"time_zone": "Pacific/Auckland"}, "2026-06-02 05:30:57", "2026-06-02 05:34:17"),
    ],
    ids=["UTC", "Pacific/Auckland"],
)
def test_get_history(hub: Hub, finished_date: str, cancelled_date: str) -> None:
    seller = hub.stocked(count=3)
    key = hub.customer()
    move_clock_to_spec_instant(hub)
    start = hub.clock.now()
    finished, phone = hub.buy(key)
    hub.push_sms(seller, phone, "code 11111")
    hub.say(key, "setStatus", id=finished, status=3)
    hub.push_sms(seller, phone, "code 22222")
    hub.say(key, "setStatus", id=finished, status=6)
    hub.clock.advance(200)
    cancelled, cancelled_phone = hub.buy(key)
    hub.clock.advance(120)
    hub.say(key, "setStatus", id=cancelled, status=8)
    hub.buy(key)  # live: not in the history
    assert hub.say(key, "getHistory", start=start, end=hub.clock.now()) == (
        f'[{{"id":{cancelled},"date":"{cancelled_date}","phone":"{cancelled_phone}","sms":[],'
        f'"cost":0.5,"status":"8","currency":840}},'
        f'{{"id":{finished},"date":"{finished_date}","phone":"{phone}",'
        f'"sms":["code 11111","code 22222"],"cost":0.5,"status":"6","currency":840}}]'
    )
    assert hub.api(key, "getHistory", limit=1).json()[0]["id"] == cancelled
    assert hub.api(key, "getHistory", limit=1, offset=1).json()[0]["id"] == finished
    assert hub.say(key, "getHistory", start=start + 1000, end=start + 2000) == "[]"
    assert hub.say(key, "getHistory", start=10, end=5) == "WRONG_DATE"
    assert hub.say(key, "getHistory", start=0, end=31 * 24 * 3600) == "WRONG_DATE"
    assert hub.say(key, "getHistory", start="yesterday") == "WRONG_DATE"
    assert hub.say(hub.customer(), "getHistory") == "[]"
