"""``Idempotency-Key`` on ``POST /api/v1/activations``: one purchase per key, also under
concurrency and across a failure between the purchase and storing its answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from otphub.db.schema import activations, idempotency_keys
from otphub.services import idempotency, purchase
from tests.support import Hub

V1 = "/api/v1"


def buy(hub: Hub, key: str, idem: str | None, body: object | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return hub.http.post(V1 + "/activations", headers=headers, json=body or {"service": "tg"})


def count(hub: Hub, table: Any) -> int:
    async def read() -> int:
        async with hub.rt.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    return hub.call(read())


def balance(hub: Hub, key: str) -> float:
    answer = hub.http.get(V1 + "/balance", headers={"Authorization": f"Bearer {key}"})
    value: float = answer.json()["balance"]
    return value


def test_the_same_key_and_body_answer_the_first_answer(hub: Hub) -> None:
    seller = hub.stocked(count=3)
    key = hub.customer("5.00")
    first = buy(hub, key, "order-1")
    assert first.status_code == 201, first.text
    # The activation changes meanwhile; the answer stays the first one, byte for byte.
    hub.push_sms(seller, first.json()["phone"], "Telegram code: 12345")
    again = buy(hub, key, "order-1", {"country": 0, "service": "tg"})  # same body, reordered
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert count(hub, activations) == 1
    assert balance(hub, key) == 4.5
    # Another key buys again.
    other = buy(hub, key, "order-2")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert count(hub, activations) == 2


def test_the_same_key_with_another_body_is_a_conflict(hub: Hub) -> None:
    hub.stocked(count=3)
    hub.stocked(count=3, service="wa", first_phone=79000000101)
    key = hub.customer("5.00")
    assert buy(hub, key, "k").status_code == 201
    reused = buy(hub, key, "k", {"service": "wa"})
    assert reused.status_code == 409
    assert reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    assert count(hub, activations) == 1
    # Keys are per customer: another customer's same key is its own.
    assert buy(hub, hub.customer("5.00", name="other"), "k").status_code == 201


@pytest.mark.parametrize("idem", [b"", b"x" * 256, "caf\u00e9".encode()])
def test_a_malformed_key_is_bad_request(hub: Hub, idem: bytes) -> None:
    hub.stocked(count=1)
    key = hub.customer()
    headers = {b"Authorization": f"Bearer {key}".encode(), b"Idempotency-Key": idem}
    response = hub.http.post(V1 + "/activations", headers=headers, json={"service": "tg"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "BAD_REQUEST"
    assert count(hub, activations) == 0


def test_a_refusal_is_not_kept_and_a_retry_tries_again(hub: Hub) -> None:
    key = hub.customer("5.00")
    refused = buy(hub, key, "k")
    assert refused.status_code == 404 and refused.json()["error"] == "NO_NUMBERS"
    assert count(hub, idempotency_keys) == 0
    hub.stocked(count=1)
    bought = buy(hub, key, "k")
    assert bought.status_code == 201
    assert buy(hub, key, "k").content == bought.content


def test_concurrent_requests_with_one_key_buy_once(hub: Hub) -> None:
    hub.stocked(count=10)
    key = hub.customer("50.00")

    async def race() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "race"}
        async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(V1 + "/activations", headers=headers, json={"service": "tg"})
                        for _ in range(8)
                    )
                )
            )

    answers = asyncio.run(race())
    assert count(hub, activations) == 1
    bought = [a for a in answers if a.status_code == 201]
    assert bought, [a.text for a in answers]
    assert {a.content for a in bought} == {bought[0].content}
    for answer in answers:
        if answer.status_code != 201:
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"] == "IDEMPOTENCY_KEY_IN_USE"
    assert balance(hub, key) == 49.5


def test_a_failure_after_the_purchase_does_not_buy_again(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.stocked(count=3)
    key = hub.customer("5.00")
    store_answer = idempotency._answered

    async def dies(*_args: Any, **_kwargs: Any) -> idempotency.Answer:
        raise RuntimeError("the process died before storing the answer")

    monkeypatch.setattr(idempotency, "_answered", dies)
    failed = buy(hub, key, "k")
    assert failed.status_code == 500 and failed.json()["error"] == "ERROR_SQL"
    assert "died" not in failed.text
    assert count(hub, activations) == 1  # bought, but the answer was not stored
    monkeypatch.setattr(idempotency, "_answered", store_answer)
    retried = buy(hub, key, "k")
    assert retried.status_code == 201, retried.text
    assert count(hub, activations) == 1
    assert buy(hub, key, "k").content == retried.content
    assert balance(hub, key) == 4.5


def test_a_claim_left_before_buying_is_taken_over_once_stale(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.stocked(count=3)
    key = hub.customer("5.00")
    real_buy = purchase.buy_number

    async def dies(*_args: Any, **_kwargs: Any) -> purchase.Purchase:
        raise RuntimeError("the process died before buying")

    monkeypatch.setattr(purchase, "buy_number", dies)
    assert buy(hub, key, "k").status_code == 500
    monkeypatch.setattr(purchase, "buy_number", real_buy)
    # Perhaps still being bought: not yet.
    in_use = buy(hub, key, "k")
    assert in_use.status_code == 409 and in_use.json()["error"] == "IDEMPOTENCY_KEY_IN_USE"
    hub.clock.advance(idempotency.STALE_CLAIM)
    taken_over = buy(hub, key, "k")
    assert taken_over.status_code == 201, taken_over.text
    assert count(hub, activations) == 1


def test_keys_are_kept_a_day(hub: Hub) -> None:
    hub.stocked(count=3)
    key = hub.customer("5.00")
    first = buy(hub, key, "k")
    hub.clock.advance(idempotency.KEEP_SECONDS - 1)
    assert buy(hub, key, "k").content == first.content
    assert hub.call(idempotency.purge(hub.rt)) == 0
    hub.clock.advance(1)
    # A day later the key is forgotten (even before the sweeper purges it): a new purchase.
    second = buy(hub, key, "k")
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert count(hub, activations) == 2
    hub.clock.advance(idempotency.KEEP_SECONDS)
    assert hub.call(idempotency.purge(hub.rt)) == 1
    assert count(hub, idempotency_keys) == 0
