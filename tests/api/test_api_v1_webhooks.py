"""API v1's webhooks: register (at most 3, public addresses only unless allowed), list,
remove; each customer sees only its own."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Hub

V1 = "/api/v1"


def call(hub: Hub, key: str, method: str, path: str, body: object = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return hub.http.request(method, V1 + path, headers=headers, json=body)


@pytest.mark.parametrize("hub_settings", [{"webhook_allow_private": True}])
def test_add_list_remove(hub: Hub) -> None:
    key = hub.customer()
    added = call(hub, key, "POST", "/webhooks", {"url": "http://127.0.0.1:9/otp"})
    assert added.status_code == 201, added.text
    new = added.json()
    assert set(new) == {"id", "url", "secret"}
    assert new["url"] == "http://127.0.0.1:9/otp" and len(new["secret"]) > 20

    listed = call(hub, key, "GET", "/webhooks")
    assert listed.status_code == 200
    assert listed.json()["webhooks"] == [
        {
            "id": new["id"],
            "url": new["url"],
            "created_at": listed.json()["webhooks"][0]["created_at"],
        }
    ]
    assert listed.json()["webhooks"][0]["created_at"].endswith("Z")
    assert "secret" not in listed.text

    other = hub.customer(name="other")
    assert call(hub, other, "GET", "/webhooks").json() == {"webhooks": []}
    not_theirs = call(hub, other, "DELETE", f"/webhooks/{new['id']}")
    assert not_theirs.status_code == 404 and not_theirs.json()["error"] == "NOT_FOUND"

    removed = call(hub, key, "DELETE", f"/webhooks/{new['id']}")
    assert removed.status_code == 204 and removed.content == b""
    assert call(hub, key, "GET", "/webhooks").json() == {"webhooks": []}
    assert call(hub, key, "DELETE", f"/webhooks/{new['id']}").status_code == 404


@pytest.mark.parametrize("hub_settings", [{"webhook_allow_private": True}])
def test_at_most_three(hub: Hub) -> None:
    key = hub.customer()
    for port in (9001, 9002, 9003):
        url = f"http://127.0.0.1:{port}/otp"
        assert call(hub, key, "POST", "/webhooks", {"url": url}).status_code == 201
    fourth = call(hub, key, "POST", "/webhooks", {"url": "http://127.0.0.1:9004/otp"})
    assert fourth.status_code == 400
    assert fourth.json()["error"] == "BAD_REQUEST"
    assert "3" in fourth.json()["message"]


@pytest.mark.parametrize(
    "body", [{"url": "http://127.0.0.1:9/otp"}, {"url": "ftp://example.com/x"}, {}, {"url": 5}]
)
def test_refused_urls_and_bodies(hub: Hub, body: object) -> None:
    key = hub.customer()
    refused = call(hub, key, "POST", "/webhooks", body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "BAD_REQUEST"
    assert refused.json()["message"]
    assert call(hub, key, "GET", "/webhooks").json() == {"webhooks": []}


def test_webhooks_need_a_key(hub: Hub) -> None:
    assert hub.http.get(V1 + "/webhooks").json()["error"] == "NO_KEY"
    assert hub.http.delete(V1 + "/webhooks/1").status_code == 401
