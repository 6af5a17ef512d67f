"""The published client library ``smsactivate==1.5`` (``SMSActivateAPI``) against the live
server, unchanged except for its base URL, on SQLite and PostgreSQL.

The library compares whole bodies and slices them at fixed offsets
(``ACCESS_BALANCE:`` is 15 characters, ``ACCESS_NUMBER:`` 14), turns the words it knows
into ``{"error": word, "message": ...}`` (``STATUS_CANCEL`` among them), decodes JSON for
getPrices and getNumberV2, and returns every other answer as the raw text.
"""

from __future__ import annotations

from typing import Any

from smsactivate.api import SMSActivateAPI

from tests.support import Hub

PHONES = {79000000001, 79000000002}


def client(hub: Hub, key: str) -> Any:
    api = SMSActivateAPI(key)
    api._SMSActivateAPI__api_url = hub.url + "/stubs/handler_api.php"
    return api


def error(api: Any, word: str) -> dict[str, str]:
    return {"error": word, "message": api.get_error(word)}


def test_buy_sms_retry_finish(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50", payout="0.40")
    api = client(hub, hub.customer("10.00"))

    assert api.getBalance() == {"balance": "10.00"}
    assert api.getBalanceAndCashBack() == {"balance": "10.00"}
    assert api.getPrices(service="tg", country=0) == {
        "0": {"tg": {"cost": 0.5, "count": 2, "physicalCount": 2}}
    }

    bought = api.getNumber(service="tg", country=0)
    assert set(bought) == {"activation_id", "phone"}
    activation_id, phone = bought["activation_id"], bought["phone"]
    assert isinstance(activation_id, int) and activation_id > 0
    assert phone in PHONES
    assert api.getBalance() == {"balance": "9.50"}  # the price is held
    assert api.getPrices(service="tg", country=0)["0"]["tg"]["count"] == 1

    assert api.getStatus(id=activation_id) == "STATUS_WAIT_CODE"
    assert api.getFullSms(id=activation_id) == "STATUS_WAIT_CODE"
    assert api.setStatus(id=activation_id, status=1) == "ACCESS_READY"
    assert api.setStatus(id=activation_id, status=1) == "ACCESS_READY"
    assert api.setStatus(id=activation_id, status=6) == error(api, "BAD_STATUS")

    assert hub.push_sms(seller, str(phone), "Your code: 48213").json() == {"status": "SUCCESS"}
    status = api.getStatus(id=activation_id)
    assert status == "STATUS_OK:48213"
    word, code = status.split(":")  # what every client of this library does
    assert (word, code) == ("STATUS_OK", "48213")
    assert api.activationStatus(word) == {"status": "STATUS_OK", "message": "Code received"}
    assert api.getFullSms(id=activation_id) == "FULL_SMS:Your code: 48213"
    # a code arrived: cancelling is refused, the customer must finish
    assert api.setStatus(id=activation_id, status=8) == error(api, "BAD_STATUS")

    assert api.setStatus(id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert api.getStatus(id=activation_id) == "STATUS_WAIT_RETRY:48213"
    assert hub.push_sms(seller, str(phone), "Telegram code 991-204").status_code == 200
    assert api.getStatus(id=activation_id) == "STATUS_OK:991204"
    assert api.getFullSms(id=activation_id) == "FULL_SMS:Telegram code 991-204"

    assert api.setStatus(id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert api.setStatus(id=activation_id, status=6) == "ACCESS_ACTIVATION"  # no second charge
    assert api.getStatus(id=activation_id) == error(api, "STATUS_CANCEL")
    assert api.getFullSms(id=activation_id) == "FULL_SMS:Telegram code 991-204"
    assert api.getBalance() == {"balance": "9.50"}


def test_buy_cancel(hub: Hub) -> None:
    hub.stocked(count=2, price="0.50")
    api = client(hub, hub.customer("10.00"))

    bought = api.getNumber(service="tg", country=0)
    activation_id = bought["activation_id"]
    assert api.getBalance() == {"balance": "9.50"}
    # inside the early-cancel window (120 s): refused, a word the library does not know
    assert api.setStatus(id=activation_id, status=8) == "EARLY_CANCEL_DENIED"
    assert api.getStatus(id=activation_id) == "STATUS_WAIT_CODE"

    hub.clock.advance(121)
    assert api.setStatus(id=activation_id, status=8) == "ACCESS_CANCEL"
    assert api.setStatus(id=activation_id, status=8) == "ACCESS_CANCEL"  # no second refund
    assert api.getStatus(id=activation_id) == error(api, "STATUS_CANCEL")
    assert api.getFullSms(id=activation_id) == error(api, "STATUS_CANCEL")
    assert api.setStatus(id=activation_id, status=6) == error(api, "BAD_STATUS")
    assert api.getBalance() == {"balance": "10.00"}
    assert api.getPrices(service="tg", country=0)["0"]["tg"]["count"] == 2

    # -1 cancels too
    second = api.getNumber(service="tg", country=0)["activation_id"]
    hub.clock.advance(121)
    assert api.setStatus(id=second, status=-1) == "ACCESS_CANCEL"
    assert api.getStatus(id=second) == error(api, "STATUS_CANCEL")
    assert api.getBalance() == {"balance": "10.00"}


def test_get_number_v2(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50", operator="mts")
    api = client(hub, hub.customer("10.00"))
    bought = api.getNumberV2(service="tg", country=0)
    assert isinstance(bought["activationId"], int)
    assert bought["phoneNumber"] == "79000000001"
    assert bought["activationCost"] == 0.5
    assert bought["currency"] == 840
    assert bought["countryCode"] == "0"
    assert bought["countryPhoneCode"] == 7
    assert bought["activationOperator"] == "mts"
    assert api.getStatus(id=bought["activationId"]) == "STATUS_WAIT_CODE"
    assert api.getBalance() == {"balance": "9.50"}


def test_get_prices(hub: Hub) -> None:
    hub.stocked(count=3, service="tg", country=0, price="0.50")
    hub.stocked(count=2, service="tg", country=0, price="0.40", first_phone=79000000101)
    hub.stocked(count=1, service="wa", country=2, price="0.65", first_phone=77000000001)
    api = client(hub, hub.customer("1.00"))
    assert api.getPrices() == {
        "0": {"tg": {"cost": 0.4, "count": 5, "physicalCount": 5}},
        "2": {"wa": {"cost": 0.65, "count": 1, "physicalCount": 1}},
    }
    assert api.getPrices(service="wa") == {
        "2": {"wa": {"cost": 0.65, "count": 1, "physicalCount": 1}}
    }
    assert api.getPrices(country=0) == {"0": {"tg": {"cost": 0.4, "count": 5, "physicalCount": 5}}}
    assert api.getPrices(service="wa", country=0) == {}
    assert api.getPrices(service="nosuchsvc") == error(api, "BAD_SERVICE")


def test_errors_as_the_library_reads_them(hub: Hub) -> None:
    hub.stocked(count=1, price="0.50")
    key = hub.customer("10.00")
    api = client(hub, key)

    assert client(hub, "ohc_this-key-does-not-exist").getBalance() == error(api, "BAD_KEY")
    assert client(hub, "").getBalance() == error(api, "NO_KEY")  # empty = absent
    assert api.getNumber(service="nosuchsvc", country=0) == error(api, "BAD_SERVICE")
    assert api.getNumber(service="wa", country=0) == error(api, "NO_NUMBERS")
    assert client(hub, hub.customer("0.49")).getNumber(service="tg", country=0) == error(
        api, "NO_BALANCE"
    )
    assert api.getStatus(id=987654321) == error(api, "NO_ACTIVATION")
    assert api.setStatus(id=987654321, status=6) == error(api, "NO_ACTIVATION")

    activation_id = api.getNumber(service="tg", country=0)["activation_id"]
    assert api.setStatus(id=activation_id, status=5) == error(api, "BAD_STATUS")
    assert api.getNumber(service="tg", country=0) == error(api, "NO_NUMBERS")
    # another customer's activation is indistinguishable from an unknown one
    other = client(hub, hub.customer("10.00"))
    assert other.getStatus(id=activation_id) == error(api, "NO_ACTIVATION")
    assert other.setStatus(id=activation_id, status=8) == error(api, "NO_ACTIVATION")
    assert api.getStatus(id=activation_id) == "STATUS_WAIT_CODE"
