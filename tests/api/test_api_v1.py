"""JSON API v1 (``/api/v1``): every endpoint's answer and its refusals, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from otphub.domain import errors
from otphub.services import accounts, lifecycle
from tests.support import Hub

V1 = "/api/v1"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def get(hub: Hub, key: str | None, path: str, **params: Any) -> httpx.Response:
    headers = bearer(key) if key is not None else {}
    return hub.http.get(V1 + path, headers=headers, params=params)


def post(
    hub: Hub, key: str, path: str, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return hub.http.post(V1 + path, headers={**bearer(key), **(headers or {})}, json=body)


def refused(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert body["message"]
    return body


ACTIVATION_FIELDS = {
    "id",
    "phone",
    "service",
    "country",
    "operator",
    "price",
    "currency",
    "state",
    "status",
    "code",
    "sms_text",
    "sms_at",
    "created_at",
    "expires_at",
    "ended_at",
}


# ---------------------------------------------------------------- authentication


def test_a_missing_or_unknown_key_is_refused(hub: Hub) -> None:
    body = refused(get(hub, None, "/balance"), 401, "NO_KEY")
    assert body["message"] == "No API key was sent."
    refused(get(hub, "ohc_not-a-key", "/balance"), 401, "BAD_KEY")
    wrong_scheme = hub.http.get(V1 + "/balance", headers={"Authorization": "Basic abc"})
    refused(wrong_scheme, 401, "NO_KEY")
    assert get(hub, None, "/balance").headers["www-authenticate"].startswith("Bearer")


def test_a_banned_customer_is_refused_with_the_time(hub: Hub) -> None:
    customer_id, key = hub.customer_id()
    until = hub.clock.now() + 3600
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=until))
    body = refused(get(hub, key, "/balance"), 403, "BANNED")
    assert len(body["until"]) == len("2026-06-01 17:30:57")
    assert body["until"][13] == ":" and body["until"][16] == ":"


@pytest.mark.parametrize("hub_settings", [{"auth_failures_per_minute": 3}])
def test_bad_keys_from_one_address_are_limited(hub: Hub) -> None:
    key = hub.customer()
    statuses = [get(hub, "ohc_guess", "/balance").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    # A valid key from the same address is never refused for it.
    assert get(hub, key, "/balance").status_code == 200
    limited = get(hub, "ohc_guess", "/balance")
    refused(limited, 429, "TOO_MANY_REQUESTS")
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize("hub_settings", [{"rate_limit": 3}])
def test_the_key_rate_limit_applies(hub: Hub) -> None:
    key = hub.customer()
    statuses = [get(hub, key, "/balance").status_code for _ in range(10)]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses


# ---------------------------------------------------------------- balance and offers


def test_balance(hub: Hub) -> None:
    key = hub.customer("12.50")
    response = get(hub, key, "/balance")
    assert response.status_code == 200
    assert response.json() == {"balance": 12.5, "currency": "USD"}


def test_offers_with_filters(hub: Hub) -> None:
    cheap = hub.stocked(count=2, price="0.50", operator="mts", first_phone=79000000001)
    dear = hub.stocked(count=3, price="0.65", operator="beeline", first_phone=79000000101)
    hub.stocked(count=1, service="wa", price="0.30", payout="0.20", first_phone=79000000201)
    key = hub.customer()

    response = get(hub, key, "/offers", service="tg", country=0)
    assert response.status_code == 200
    assert response.json() == {
        "offers": [
            {"service": "tg", "country": 0, "price": 0.5, "count": 2},
            {"service": "tg", "country": 0, "price": 0.65, "count": 3},
        ]
    }
    everything = get(hub, key, "/offers").json()["offers"]
    assert [(o["service"], o["price"]) for o in everything] == [
        ("tg", 0.5),
        ("tg", 0.65),
        ("wa", 0.3),
    ]

    def prices(**filters: Any) -> list[float]:
        found = get(hub, key, "/offers", service="tg", **filters)
        assert found.status_code == 200, found.text
        return [o["price"] for o in found.json()["offers"]]

    assert prices(max_price="0.60") == [0.5]
    assert prices(operator="beeline") == [0.65]
    assert prices(operator="any") == [0.5, 0.65]
    assert prices(provider_ids=f"{dear.id}") == [0.65]
    assert prices(provider_ids=f"{cheap.id},{dear.id}") == [0.5, 0.65]
    assert prices(except_provider_ids=f"{dear.id}") == [0.5]
    refused(get(hub, key, "/offers", service="nope"), 400, "BAD_SERVICE")
    refused(get(hub, key, "/offers", country=99999), 400, "BAD_COUNTRY")
    malformed = refused(get(hub, key, "/offers", provider_ids="1,x"), 400, "BAD_REQUEST")
    assert malformed["details"][0]["field"] == "provider_ids"


# ---------------------------------------------------------------- activations


def test_buy_sms_code_finish_balance(hub: Hub) -> None:
    seller = hub.stocked(count=1, price="0.50", payout="0.40")
    key = hub.customer("1.00")
    bought = post(hub, key, "/activations", {"service": "tg"})
    assert bought.status_code == 201, bought.text
    act = bought.json()
    assert set(act) == ACTIVATION_FIELDS
    assert act["state"] == "waiting"
    assert act["status"] == "STATUS_WAIT_CODE"
    assert act["price"] == 0.5 and act["currency"] == "USD"
    assert act["code"] is None and act["ended_at"] is None
    assert get(hub, key, "/balance").json()["balance"] == 0.5
    assert get(hub, key, f"/activations/{act['id']}/sms").json() == {"sms": []}

    pushed = hub.push_sms(seller, act["phone"], "Telegram code: 48213")
    assert pushed.status_code == 200, pushed.text
    now = get(hub, key, f"/activations/{act['id']}").json()
    assert now["state"] == "code"
    assert now["code"] == "48213"
    assert now["status"] == "STATUS_OK:48213"
    assert now["sms_text"] == "Telegram code: 48213"
    sms = get(hub, key, f"/activations/{act['id']}/sms").json()["sms"]
    assert [(s["text"], s["code"]) for s in sms] == [("Telegram code: 48213", "48213")]
    assert set(sms[0]) == {"id", "text", "code", "received_at"}

    again = post(hub, key, f"/activations/{act['id']}/retry")
    assert again.status_code == 200 and again.json()["state"] == "retry"
    hub.push_sms(seller, act["phone"], "Telegram code: 11111")
    assert len(get(hub, key, f"/activations/{act['id']}/sms").json()["sms"]) == 2

    finished = post(hub, key, f"/activations/{act['id']}/finish")
    assert finished.status_code == 200
    assert finished.json()["state"] == "finished"
    assert finished.json()["ended_at"] is not None
    assert get(hub, key, "/balance").json()["balance"] == 0.5
    refused(post(hub, key, f"/activations/{act['id']}/cancel"), 409, "BAD_STATUS")


def test_purchase_refusals(hub: Hub) -> None:
    key = hub.customer("0.10")
    refused(post(hub, key, "/activations", {"service": "tg"}), 404, "NO_NUMBERS")
    hub.stocked(count=2, price="0.50")
    refused(post(hub, key, "/activations", {"service": "tg"}), 402, "NO_BALANCE")
    rich = hub.customer("5.00", name="rich")
    body = refused(
        post(hub, rich, "/activations", {"service": "tg", "max_price": 0.4}),
        400,
        "WRONG_MAX_PRICE",
    )
    assert body["min_price"] == 0.5
    refused(post(hub, rich, "/activations", {"service": "zz-unknown"}), 400, "BAD_SERVICE")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"service": "tg", "country": "abc"},
        {"service": "tg", "provider_ids": "1,2"},
        {"service": "tg", "unknown_field": 1},
        [1, 2],
    ],
)
def test_a_malformed_body_is_bad_request(hub: Hub, body: object) -> None:
    key = hub.customer()
    answer = refused(post(hub, key, "/activations", body), 400, "BAD_REQUEST")
    assert answer["details"] and all("field" in d and "message" in d for d in answer["details"])


def test_not_json_is_bad_request(hub: Hub) -> None:
    key = hub.customer()
    response = hub.http.post(
        V1 + "/activations",
        headers={**bearer(key), "Content-Type": "application/json"},
        content=b"{not json",
    )
    refused(response, 400, "BAD_REQUEST")


def test_another_customers_activation_is_not_found(hub: Hub) -> None:
    hub.stocked(count=2)
    mine = hub.customer("1.00")
    theirs = hub.customer("1.00", name="other")
    act = post(hub, mine, "/activations", {"service": "tg"}).json()
    for path in (f"/activations/{act['id']}", f"/activations/{act['id']}/sms"):
        refused(get(hub, theirs, path), 404, "NO_ACTIVATION")
    refused(post(hub, theirs, f"/activations/{act['id']}/cancel"), 404, "NO_ACTIVATION")
    refused(get(hub, mine, "/activations/999999"), 404, "NO_ACTIVATION")
    refused(get(hub, mine, "/activations/abc"), 400, "BAD_REQUEST")
    refused(get(hub, mine, "/activations/0"), 400, "BAD_REQUEST")


def test_early_cancel_then_cancel_refunds(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("1.00")
    act = post(hub, key, "/activations", {"service": "tg"}).json()
    refused(post(hub, key, f"/activations/{act['id']}/cancel"), 409, "EARLY_CANCEL_DENIED")
    ready = post(hub, key, f"/activations/{act['id']}/ready")
    assert ready.status_code == 200 and ready.json()["state"] == "waiting"
    hub.clock.advance(120)
    cancelled = post(hub, key, f"/activations/{act['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["status"] == "STATUS_CANCEL"
    assert get(hub, key, "/balance").json()["balance"] == 1.0
    refused(post(hub, key, f"/activations/{act['id']}/finish"), 409, "BAD_STATUS")


def test_list_activations_by_state_and_page(hub: Hub) -> None:
    hub.stocked(count=4)
    key = hub.customer("5.00")
    ids = []
    for _ in range(3):
        ids.append(post(hub, key, "/activations", {"service": "tg"}).json()["id"])
        hub.clock.advance(1)
    hub.clock.advance(120)
    assert post(hub, key, f"/activations/{ids[0]}/cancel").status_code == 200

    def listed(**params: Any) -> list[int]:
        response = get(hub, key, "/activations", **params)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["activations"]]

    assert listed() == [ids[2], ids[1], ids[0]]
    assert listed(state="live") == [ids[2], ids[1]]
    assert listed(state="ended") == [ids[0]]
    assert listed(limit=1, offset=1) == [ids[1]]
    other = hub.customer("1.00", name="other")
    assert get(hub, other, "/activations").json() == {"activations": []}
    refused(get(hub, key, "/activations", state="gone"), 400, "BAD_REQUEST")
    refused(get(hub, key, "/activations", limit=0), 400, "BAD_REQUEST")
    # Past the deadline, a list shows the activation ended, not waiting.
    hub.clock.advance(1200)
    assert listed(state="live") == []


def test_unknown_paths_and_methods_answer_json(hub: Hub) -> None:
    key = hub.customer()
    refused(get(hub, key, "/nothing-here"), 404, "NOT_FOUND")
    refused(hub.http.delete(V1 + "/balance", headers=bearer(key)), 405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_failure_is_error_sql_without_a_trace(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = hub.customer()

    async def broken(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("SELECT secret FROM somewhere")

    monkeypatch.setattr(lifecycle, "available_balance", broken)
    response = get(hub, key, "/balance")
    body = refused(response, 500, "ERROR_SQL")
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert body == {"error": "ERROR_SQL", "message": errors.explain("ERROR_SQL")}
