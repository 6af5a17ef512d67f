"""Golden answers of the dialects (customer-api.md, "Dialects"), over real HTTP.

A customer's dialect changes only the shapes the spec lists: grizzly's getActiveActivations;
herosms's refusals, getServicesList, getActiveActivations and getHistory. Every other answer
is byte for byte the sms-activate one: the same script runs for each dialect against the
same literal answers. The clock starts at 2026-05-28 20:26:40 UTC (ManualClock).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from otphub.domain import dialects
from otphub.http.limits import Limiter
from otphub.services import accounts
from tests.api.answers import JSON, TEXT, document, word
from tests.support import Hub

SPEC_INSTANT = 1_780_335_057  # 2026-06-01 17:30:57 UTC


def customer(hub: Hub, dialect: str, balance: str = "10.00") -> tuple[int, str]:
    created = hub.call(
        accounts.add_customer(hub.rt, name=dialect, balance=hub.money(balance), dialect=dialect)
    )
    return created.id, created.api_key


def answer(response: httpx.Response) -> tuple[int, str, str]:
    """(status, content type, body) of an answer, asserting no BOM or trailing newline."""
    raw = response.content
    assert not raw.startswith(b"\xef\xbb\xbf") and not raw.endswith((b"\n", b" ")), raw
    return response.status_code, response.headers["content-type"], raw.decode()


def herosms(word_: str, status: int, details: str) -> tuple[int, str, str]:
    body = json.dumps({"title": word_, "details": details}, separators=(",", ":"))
    return status, JSON, body


def at_spec_instant(hub: Hub) -> None:
    assert hub.clock.now() <= SPEC_INSTANT
    hub.clock.advance(SPEC_INSTANT - hub.clock.now())


# ---------------------------------------------------------------- the shared answers


@pytest.mark.parametrize("dialect", dialects.ALL)
def test_every_other_answer_is_the_sms_activate_one(hub: Hub, dialect: str) -> None:
    seller = hub.stocked(count=3, price="0.50", payout="0.40", operator="mts")
    _, key = customer(hub, dialect)
    at_spec_instant(hub)

    def says(action: str, **params: Any) -> tuple[int, str, str]:
        return answer(hub.api(key, action, **params))

    assert says("getBalance") == (200, TEXT, "ACCESS_BALANCE:10.00")
    assert says("getBalanceAndCashBack") == (200, TEXT, "ACCESS_BALANCE:10.00")
    status, kind, bought = says("getNumber", service="tg")
    assert (status, kind) == (200, TEXT) and bought.startswith("ACCESS_NUMBER:")
    first, phone = int(bought.split(":")[1]), bought.split(":")[2]
    assert phone == "79000000001"
    assert says("getStatus", id=first) == (200, TEXT, "STATUS_WAIT_CODE")
    assert says("getStatusV2", id=first) == (
        200,
        JSON,
        '{"verificationType":0,"sms":null,"call":null}',
    )
    assert says("getFullSms", id=first) == (200, TEXT, "STATUS_WAIT_CODE")
    assert says("setStatus", id=first, status=1) == (200, TEXT, "ACCESS_READY")
    assert hub.push_sms(seller, phone, "Telegram code: 48213").status_code == 200
    assert says("getStatus", id=first) == (200, TEXT, "STATUS_OK:48213")
    assert says("getStatusV2", id=first) == (
        200,
        JSON,
        '{"verificationType":0,"sms":{"dateTime":"2026-06-01 17:30:57","code":"48213",'
        '"text":"Telegram code: 48213"},"call":null}',
    )
    assert says("getFullSms", id=first) == (200, TEXT, "FULL_SMS:Telegram code: 48213")
    assert says("setStatus", id=first, status=3) == (200, TEXT, "ACCESS_RETRY_GET")
    assert says("getStatus", id=first) == (200, TEXT, "STATUS_WAIT_RETRY:48213")
    assert says("setStatus", id=first, status=6) == (200, TEXT, "ACCESS_ACTIVATION")
    assert says("getStatus", id=first) == (200, TEXT, "STATUS_CANCEL")

    status, kind, body = says("getNumberV2", service="tg", orderId="o-1")
    second = json.loads(body)["activationId"]
    assert (status, kind, body) == (
        200,
        JSON,
        f'{{"activationId":{second},"phoneNumber":"79000000002","activationCost":0.5,'
        '"currency":840,"countryCode":"0","countryPhoneCode":7,"canGetAnotherSms":true,'
        '"activationTime":"2026-06-01 17:30:57","activationEndTime":"2026-06-01 17:50:57",'
        '"activationOperator":"mts"}',
    )
    hub.clock.advance(120)
    assert says("setStatus", id=second, status=8) == (200, TEXT, "ACCESS_CANCEL")
    assert says("getStatus", id=second) == (200, TEXT, "STATUS_CANCEL")
    assert says("getStatusV2", id=second) == (200, TEXT, "STATUS_CANCEL")
    assert says("getBalance") == (200, TEXT, "ACCESS_BALANCE:9.50")

    # What is for sale does not depend on who asks: byte for byte a sms-activate customer's.
    _, plain = customer(hub, dialects.SMS_ACTIVATE)
    for action, params in (
        ("getPrices", {}),
        ("getPrices", {"service": "tg", "country": 0}),
        ("getPricesV2", {}),
        ("getPricesV3", {}),
        ("getNumbersStatus", {}),
        ("getTopCountriesByService", {"service": "tg"}),
        ("getCountries", {}),
        ("getOperators", {}),
    ):
        assert says(action, **params) == answer(hub.api(plain, action, **params)), action


# ---------------------------------------------------------------- grizzly


def test_grizzly_active_activations_are_a_top_level_list(hub: Hub) -> None:
    seller = hub.stocked(count=3)
    _, key = customer(hub, dialects.GRIZZLY)
    _, plain = customer(hub, dialects.SMS_ACTIVATE)
    assert document(hub, key, "getActiveActivations") == "[]"
    at_spec_instant(hub)
    first, phone = hub.buy(key)
    hub.clock.advance(43)
    second, _ = hub.buy(key)
    hub.push_sms(seller, phone, "Telegram code: 12345")
    row_1 = (
        f'{{"activationId":"{first}","serviceCode":"tg","phoneNumber":"{phone}",'
        '"activationCost":0.5,"activationStatus":"2","smsCode":["12345"],'
        '"smsText":"Telegram code: 12345","activationTime":"2026-06-01 17:30:57",'
        '"discount":"0.00","repeated":"0","countryCode":"0","countryName":"Russia",'
        '"canGetAnotherSms":"1","currency":840}'
    )
    row_2 = (
        f'{{"activationId":"{second}","serviceCode":"tg","phoneNumber":"79000000002",'
        '"activationCost":0.5,"activationStatus":"4","smsCode":null,"smsText":null,'
        '"activationTime":"2026-06-01 17:31:40","discount":"0.00","repeated":"0",'
        '"countryCode":"0","countryName":"Russia","canGetAnotherSms":"1","currency":840}'
    )
    assert document(hub, key, "getActiveActivations") == f"[{row_1},{row_2}]"
    # The same rows as sms-activate's, which wraps them (and says NO_ACTIVATIONS for none).
    assert word(hub, plain, "getActiveActivations") == "NO_ACTIVATIONS"
    assert hub.say(key, "setStatus", id=second, status=1) == "ACCESS_READY"
    hub.clock.advance(1200)  # past both deadlines: resolved, not listed
    assert document(hub, key, "getActiveActivations") == "[]"


def test_grizzly_history_services_and_refusals_are_sms_activate_ones(hub: Hub) -> None:
    hub.stocked(count=1)
    _, key = customer(hub, dialects.GRIZZLY, balance="0.40")
    _, plain = customer(hub, dialects.SMS_ACTIVATE, balance="0.40")
    for who in (key, plain):
        assert word(hub, who, "getNumber", service="tg") == "NO_BALANCE"
        assert word(hub, who, "getNumber", service="nope") == "BAD_SERVICE"
        assert word(hub, who, "getStatus", id=999) == "NO_ACTIVATION"
    for action, params in (
        ("getHistory", {}),
        ("getServicesList", {}),
        ("getServicesList", {"country": 0}),
    ):
        assert answer(hub.api(key, action, **params)) == answer(hub.api(plain, action, **params))


# ---------------------------------------------------------------- herosms


def test_herosms_services_list_is_a_top_level_list(hub: Hub) -> None:
    hub.stocked(count=1)
    _, key = customer(hub, dialects.HEROSMS)
    assert document(hub, key, "getServicesList", country=0) == ('[{"code":"tg","name":"Telegram"}]')
    everything = json.loads(document(hub, key, "getServicesList"))
    assert len(everything) == 532 and {"code": "tg", "name": "Telegram"} in everything
    assert answer(hub.api(key, "getServicesList", country=999)) == herosms(
        "BAD_COUNTRY", 400, "The country id is unknown."
    )


def test_herosms_active_activations_and_history_are_data(hub: Hub) -> None:
    seller = hub.stocked(count=3)
    _, key = customer(hub, dialects.HEROSMS)
    assert document(hub, key, "getActiveActivations") == '{"data":[]}'
    assert document(hub, key, "getHistory") == '{"data":[]}'
    at_spec_instant(hub)
    start = hub.clock.now()
    first, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Telegram code: 12345")
    assert document(hub, key, "getActiveActivations") == (
        f'{{"data":[{{"activationId":{first},"serviceCode":"tg","phoneNumber":"{phone}",'
        '"activationCost":0.5,"activationStatus":"2","smsCode":["12345"],'
        '"smsText":"Telegram code: 12345","activationTime":"2026-06-01 17:30:57",'
        '"discount":"0.00","repeated":"0","countryCode":0,"countryName":"Russia",'
        '"canGetAnotherSms":"1","currency":840}]}'
    )
    assert hub.say(key, "setStatus", id=first, status=6) == "ACCESS_ACTIVATION"
    hub.clock.advance(200)
    cancelled, cancelled_phone = hub.buy(key)
    hub.clock.advance(120)
    assert hub.say(key, "setStatus", id=cancelled, status=8) == "ACCESS_CANCEL"
    assert document(hub, key, "getActiveActivations") == '{"data":[]}'
    assert document(hub, key, "getHistory", start=start, end=hub.clock.now()) == (
        f'{{"data":[{{"activationId":{cancelled},"date":"2026-06-01 17:34:17",'
        f'"phone":"{cancelled_phone}","sms":[],"cost":0.5,"activationStatus":"8",'
        '"currency":840,"countryCode":0},'
        f'{{"activationId":{first},"date":"2026-06-01 17:30:57","phone":"{phone}",'
        '"sms":["Telegram code: 12345"],"cost":0.5,"activationStatus":"6","currency":840,'
        '"countryCode":0}]}'
    )
    assert answer(hub.api(key, "getHistory", start=10, end=5)) == herosms(
        "WRONG_DATE", 400, "The dates are malformed or more than 30 days apart."
    )


def test_herosms_refusals_carry_their_http_status(hub: Hub) -> None:
    hub.stocked(count=2, price="0.50")
    customer_id, key = customer(hub, dialects.HEROSMS, balance="0.60")

    def refused(action: str | None, **params: Any) -> tuple[int, str, str]:
        return answer(hub.api(key, action, **params))

    assert refused("getNumber", service="nope") == herosms(
        "BAD_SERVICE", 400, "The service code is unknown."
    )
    assert refused("getNumber", service="tg", country=999) == herosms(
        "BAD_COUNTRY", 400, "The country id is unknown."
    )
    assert refused("noSuchAction") == herosms(
        "BAD_ACTION", 400, "The action is unknown or not supported."
    )
    assert refused("getNumber", service="tg", maxPrice="0.10") == herosms(
        "WRONG_MAX_PRICE",
        400,
        "The cheapest number costs more than the maximum price given. The cheapest costs 0.50.",
    )
    assert refused("getNumber", service="wa") == herosms(
        "NO_NUMBERS", 404, "No number is available for this service and country right now."
    )
    assert refused("getStatus", id=999) == herosms("NO_ACTIVATION", 404, "No such activation.")
    assert refused("getStatus", id="x") == herosms(
        "WRONG_ACTIVATION_ID", 400, "The activation id is malformed."
    )
    assert refused("getOperators", country=5) == herosms(
        "OPERATORS_NOT_FOUND", 404, "No operator is known for this country."
    )
    body = document(hub, key, "getNumberV2", service="tg", orderId="o-1")
    bought = json.loads(body)["activationId"]
    assert refused("getNumberV2", service="tg", orderId="o-1") == herosms(
        "ORDER_ALREADY_EXISTS", 409, "An activation with this order id was bought already."
    )
    assert refused("getNumber", service="tg") == herosms(
        "NO_BALANCE", 402, "The balance is too low for this number."
    )
    assert refused("setStatus", id=bought, status=8) == herosms(
        "EARLY_CANCEL_DENIED",
        409,
        "An activation cannot be cancelled in the first minutes after purchase.",
    )
    assert refused("setStatus", id=bought, status=6) == herosms(
        "BAD_STATUS", 409, "The activation cannot take this status in its current state."
    )
    # The answers that are not refusals stay the protocol's words.
    assert refused("getStatus", id=bought) == (200, TEXT, "STATUS_WAIT_CODE")
    assert refused("getBalance") == (200, TEXT, "ACCESS_BALANCE:0.10")
    hub.call(accounts.set_limits(hub.rt, customer_id=customer_id, max_live=1))
    hub.call(accounts.top_up(hub.rt, customer_id=customer_id, amount=hub.money("1.00")))
    assert refused("getNumber", service="tg") == herosms(
        "CHANNELS_LIMIT", 429, "The account already has its maximum of live activations."
    )


def test_herosms_key_refusals(hub: Hub) -> None:
    hub.stocked(count=1)
    customer_id, key = customer(hub, dialects.HEROSMS)
    # No key, or a key that is nobody's: no customer to ask, so the default dialect.
    assert answer(hub.api(None, "getBalance")) == (200, TEXT, "NO_KEY")
    assert answer(hub.api("ohc_" + "A" * 36, "getBalance")) == (200, TEXT, "BAD_KEY")
    # A banned customer, then a revoked key: that customer's dialect.
    until = SPEC_INSTANT + 3600
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=until))
    for action in ("getBalance", "getStatus", "getNumber"):
        assert answer(hub.api(key, action, id=1, service="tg")) == herosms(
            "BANNED", 403, "This account is blocked until 2026-06-01 18-30-57."
        )
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=None))
    assert answer(hub.api(key, "getBalance")) == (200, TEXT, "ACCESS_BALANCE:10.00")
    hub.call(accounts.revoke_key(hub.rt, kind="customer", key=key))
    for action in ("getBalance", "getStatus"):
        assert answer(hub.api(key, action, id=1)) == herosms(
            "BAD_KEY", 401, "The API key is unknown or has been revoked."
        )
    # A sms-activate customer's revoked key is the plain word.
    _, plain = customer(hub, dialects.SMS_ACTIVATE)
    hub.call(accounts.revoke_key(hub.rt, kind="customer", key=plain))
    assert answer(hub.api(plain, "getBalance")) == (200, TEXT, "BAD_KEY")


@pytest.mark.parametrize("hub_settings", [{"rate_limit": 2}])
@pytest.mark.parametrize("dialect", dialects.ALL)
def test_too_many_requests_in_each_dialect(hub: Hub, dialect: str) -> None:
    app = hub.live.app.app
    assert isinstance(app, Starlette)
    app.state.limiter = Limiter(auth_failures_per_minute=60, clock=lambda: 1000.0)
    _, key = customer(hub, dialect)
    answers = [hub.api(key, "getBalance") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[2].headers["retry-after"] == "1"
    if dialect == dialects.HEROSMS:
        assert answer(answers[2]) == herosms(
            "TOO_MANY_REQUESTS", 429, "Too many requests: slow down and retry later."
        )
    else:
        assert answer(answers[2]) == (429, TEXT, "TOO_MANY_REQUESTS")


def test_the_dialect_changes_with_the_next_request(hub: Hub) -> None:
    customer_id, key = customer(hub, dialects.SMS_ACTIVATE)
    assert word(hub, key, "getActiveActivations") == "NO_ACTIVATIONS"
    for dialect, empty in ((dialects.GRIZZLY, "[]"), (dialects.HEROSMS, '{"data":[]}')):
        hub.call(accounts.set_dialect(hub.rt, customer_id=customer_id, dialect=dialect))
        assert document(hub, key, "getActiveActivations") == empty
    hub.call(accounts.set_dialect(hub.rt, customer_id=customer_id, dialect="SMS-Activate "))
    assert word(hub, key, "getActiveActivations") == "NO_ACTIVATIONS"
