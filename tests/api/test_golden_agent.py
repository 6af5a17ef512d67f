"""Golden answers of the supplier push endpoint ``POST /agent/api/sms`` (SMSHub PUSH_SMS)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from sqlalchemy import Select, func, select

from otphub.db.schema import activations, sms
from tests.support import Hub, Seller

PATH = "/agent/api/sms"
JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
SUCCESS = b'{"status":"SUCCESS"}'


# ---------------------------------------------------------------- helpers


def push(hub: Hub, body: Any, **kwargs: Any) -> httpx.Response:
    return hub.http.post(PATH, content=json.dumps(body).encode(), **kwargs)


def message(seller: Seller, phone: str | int, text: str, sms_id: int | str = 1) -> dict[str, Any]:
    return {
        "action": "PUSH_SMS",
        "key": seller.key,
        "smsId": sms_id,
        "phone": int(phone),
        "phoneFrom": "Telegram",
        "text": text,
    }


def assert_success(response: httpx.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == JSON
    assert response.content == SUCCESS


def assert_error(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"] == JSON
    assert not response.content.endswith(b"\n")
    body: dict[str, Any] = json.loads(response.content)
    assert list(body) == ["status", "error"], body
    assert body["status"] == "ERROR"
    assert isinstance(body["error"], str)
    assert body["error"]
    return body


def rows(hub: Hub, query: Select[Any]) -> list[Any]:
    async def run() -> list[Any]:
        async with hub.rt.db.read() as conn:
            return list((await conn.execute(query)).all())

    return hub.call(run())


def sms_count(hub: Hub) -> int:
    return int(rows(hub, select(func.count()).select_from(sms))[0][0])


def stored(hub: Hub) -> list[tuple[Any, ...]]:
    found = rows(
        hub,
        select(
            sms.c.provider_id,
            sms.c.provider_sms_id,
            sms.c.phone,
            sms.c.phone_from,
            sms.c.text,
            sms.c.code,
            sms.c.activation_id,
            sms.c.received_at,
        ).order_by(sms.c.id),
    )
    return [tuple(r) for r in found]


def status(hub: Hub, key: str, activation_id: int) -> str:
    return hub.say(key, "getStatus", id=activation_id)


# ---------------------------------------------------------------- success


def test_push_sms_success(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    response = push(hub, message(seller, phone, "Telegram code: 33708", sms_id=1))
    assert_success(response)
    assert status(hub, key, activation_id) == "STATUS_OK:33708"
    assert stored(hub) == [
        (
            seller.id,
            1,
            "79000000001",
            "Telegram",
            "Telegram code: 33708",
            "33708",
            activation_id,
            hub.clock.now(),
        )
    ]


def test_push_sms_with_httpx_json_and_without_action(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    body = message(seller, phone, "Your code: 48213")
    del body["action"]
    del body["phoneFrom"]
    assert_success(hub.http.post(PATH, json=body))
    assert status(hub, key, activation_id) == "STATUS_OK:48213"


def test_repeat_of_an_sms_id_is_acknowledged_and_not_stored_twice(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    first = message(seller, phone, "Your code: 48213", sms_id=7)
    assert_success(push(hub, first))
    assert word_after_retry(hub, key, activation_id) == "STATUS_WAIT_RETRY:48213"
    # The agent resends the same SMS: acknowledged, not stored, and it changes nothing.
    hub.clock.advance(10)
    assert_success(push(hub, first))
    assert_success(push(hub, {**first, "text": "Your code: 99999"}))
    assert sms_count(hub) == 1
    assert status(hub, key, activation_id) == "STATUS_WAIT_RETRY:48213"
    # A new smsId is a new SMS.
    assert_success(push(hub, message(seller, phone, "Your code: 51515", sms_id=8)))
    assert sms_count(hub) == 2
    assert status(hub, key, activation_id) == "STATUS_OK:51515"


def word_after_retry(hub: Hub, key: str, activation_id: int) -> str:
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    return status(hub, key, activation_id)


def test_sms_ids_are_per_provider(hub: Hub) -> None:
    first = hub.stocked(count=1, first_phone=79110000001)
    second = hub.stocked(count=1, first_phone=79220000001)
    assert_success(push(hub, message(first, "79110000001", "code 1111", sms_id=5)))
    assert_success(push(hub, message(second, "79220000001", "code 2222", sms_id=5)))
    assert sms_count(hub) == 2


def test_unmatched_sms_is_stored(hub: Hub) -> None:
    seller = hub.stocked(count=2)
    response = push(hub, message(seller, "79000000002", "Your code: 12345", sms_id=3))
    assert_success(response)
    assert stored(hub) == [
        (
            seller.id,
            3,
            "79000000002",
            "Telegram",
            "Your code: 12345",
            "12345",
            None,
            hub.clock.now(),
        )
    ]
    # It does not reach a later activation on that number.
    key = hub.customer("10.00")
    bought = [hub.buy(key), hub.buy(key)]
    assert [phone for _, phone in bought] == ["79000000001", "79000000002"]
    for activation_id, _ in bought:
        assert status(hub, key, activation_id) == "STATUS_WAIT_CODE"


def test_sms_after_the_activation_ended_is_unmatched(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    assert_success(push(hub, message(seller, phone, "Your code: 48213", sms_id=1)))
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert_success(push(hub, message(seller, phone, "Your code: 77777", sms_id=2)))
    assert [r[6] for r in stored(hub)] == [activation_id, None]
    assert hub.say(key, "getFullSms", id=activation_id) == "FULL_SMS:Your code: 48213"


def test_sms_after_the_deadline_is_unmatched_and_the_activation_cancelled(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    hub.clock.advance(1200)
    assert_success(push(hub, message(seller, phone, "Your code: 48213", sms_id=1)))
    assert [r[6] for r in stored(hub)] == [None]
    assert status(hub, key, activation_id) == "STATUS_CANCEL"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:10.00"
    state = rows(hub, select(activations.c.state).where(activations.c.id == activation_id))
    assert state == [("cancelled",)]


def test_gzip_body(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    raw = gzip.compress(json.dumps(message(seller, phone, "Your code: 48213")).encode())
    response = hub.http.post(
        PATH,
        content=raw,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert_success(response)
    assert status(hub, key, activation_id) == "STATUS_OK:48213"
    assert sms_count(hub) == 1


def test_a_gzip_bomb_is_refused_without_inflating_it(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    body = message(seller, "79000000001", "x" * 50_000_000)  # ~50 KB compressed
    raw = gzip.compress(json.dumps(body).encode())
    assert len(raw) < 64 * 1024
    response = hub.http.post(
        PATH,
        content=raw,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert response.json() == {"status": "ERROR", "error": "body too large"}
    assert sms_count(hub) == 0


def test_numbers_as_json_numbers(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    raw = (
        f'{{"action":"PUSH_SMS","key":"{seller.key}","smsId":123456789012,'
        f'"phone":{phone},"phoneFrom":"Telegram","text":"Telegram code: 33708"}}'
    ).encode()
    assert_success(hub.http.post(PATH, content=raw))
    assert status(hub, key, activation_id) == "STATUS_OK:33708"
    assert [r[1:3] for r in stored(hub)] == [(123456789012, phone)]


def test_unicode_text(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    text = "Код подтверждения: 4821. Никому не сообщайте 🙂"
    assert_success(push(hub, message(seller, phone, text)))
    assert hub.say(key, "getFullSms", id=activation_id) == f"FULL_SMS:{text}"
    assert status(hub, key, activation_id) == "STATUS_OK:4821"


# ---------------------------------------------------------------- refusals


def test_bad_key(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    customer_key = hub.customer("10.00")
    activation_id, phone = hub.buy(customer_key)
    good = message(seller, phone, "Your code: 48213")
    for key in ("ohp_" + "N" * 32, "", "bad key!", None, 12345, customer_key):
        assert_error(push(hub, {**good, "key": key}))
    missing = dict(good)
    del missing["key"]
    assert_error(push(hub, missing))
    assert sms_count(hub) == 0
    assert status(hub, customer_key, activation_id) == "STATUS_WAIT_CODE"


def test_malformed_bodies(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    for raw in (b"", b"{not json", b'{"key": "x"', b"\xff\xfe\x00", b"null"):
        assert_error(hub.http.post(PATH, content=raw))
    for value in ([1, 2], "PUSH_SMS", 42, [message(seller, phone, "Your code: 48213")]):
        assert_error(push(hub, value))
    # A body that says gzip but is not.
    assert_error(
        hub.http.post(
            PATH,
            content=json.dumps(message(seller, phone, "Your code: 48213")).encode(),
            headers={"Content-Encoding": "gzip"},
        )
    )
    assert sms_count(hub) == 0
    assert status(hub, key, activation_id) == "STATUS_WAIT_CODE"


def test_missing_or_bad_fields(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    good = message(seller, phone, "Your code: 48213")
    broken: list[dict[str, Any]] = []
    for name in ("text", "smsId", "phone"):
        body = dict(good)
        del body[name]
        broken.append(body)
    broken += [
        {**good, "text": ""},
        {**good, "text": None},
        {**good, "text": 48213},
        {**good, "smsId": "abc"},
        {**good, "smsId": True},
        {**good, "smsId": 1.5},
        {**good, "phone": "not a phone"},
        {**good, "phone": 12},
        {**good, "phone": None},
    ]
    for body in broken:
        assert_error(push(hub, body))
    assert sms_count(hub) == 0
    assert status(hub, key, activation_id) == "STATUS_WAIT_CODE"


def test_phone_not_owned_by_the_provider(hub: Hub) -> None:
    owner = hub.stocked(count=1, first_phone=79110000001)
    stranger = hub.stocked(count=1, first_phone=79220000001)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key, providerIds=owner.id)
    assert phone == "79110000001"
    assert_error(push(hub, message(stranger, phone, "Your code: 48213")))
    assert_error(push(hub, message(stranger, "79998887766", "Your code: 48213")))
    assert sms_count(hub) == 0
    assert status(hub, key, activation_id) == "STATUS_WAIT_CODE"


def test_get_is_not_a_push(hub: Hub) -> None:
    response = hub.http.get(PATH)
    assert response.status_code in (404, 405)
    assert sms_count(hub) == 0


# ---------------------------------------------------------------- input limits


def test_out_of_range_sms_id_is_a_client_error(hub: Hub) -> None:
    """A 5xx makes the agent resend every 10 seconds forever; a body that can never be
    stored is malformed: 4xx."""
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    for sms_id in (2**63, 2**64, "\u00b2", "\u0661"):
        assert_error(push(hub, message(seller, phone, "Your code: 48213", sms_id=sms_id)))
    assert sms_count(hub) == 0
    assert status(hub, key, activation_id) == "STATUS_WAIT_CODE"


def test_a_long_phone_from_is_stored(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    body = {**message(seller, phone, "Your code: 48213"), "phoneFrom": "Sender " * 20}
    assert_success(push(hub, body))
    assert status(hub, key, activation_id) == "STATUS_OK:48213"
    assert sms_count(hub) == 1
