"""API v1's OpenAPI document and its interactive docs page, served offline by the app."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support import Hub

V1 = "/api/v1"

PATHS = {
    "/balance": {"get"},
    "/offers": {"get"},
    "/activations": {"get", "post"},
    "/activations/{activation_id}": {"get"},
    "/activations/{activation_id}/ready": {"post"},
    "/activations/{activation_id}/retry": {"post"},
    "/activations/{activation_id}/finish": {"post"},
    "/activations/{activation_id}/cancel": {"post"},
    "/activations/{activation_id}/sms": {"get"},
    "/activations/{activation_id}/events": {"get"},
    "/webhooks": {"get", "post"},
    "/webhooks/{webhook_id}": {"delete"},
}


def document(hub: Hub) -> dict[str, Any]:
    response = hub.http.get(V1 + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()
    return found


def test_the_document_is_valid_openapi_3_listing_every_path(hub: Hub) -> None:
    doc = document(hub)
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert doc["servers"][0]["url"] == V1
    paths = {p: set(ops) for p, ops in doc["paths"].items()}
    assert paths == PATHS
    assert "CustomerKey" in doc["components"]["securitySchemes"]
    events = doc["paths"]["/activations/{activation_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    # The activation object is described field for field as activation_json writes it.
    activation = doc["components"]["schemas"]["Activation"]
    assert set(activation["properties"]) == {
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
    buy = doc["paths"]["/activations"]["post"]
    assert "201" in buy["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in buy["parameters"])


def test_the_docs_page_and_its_assets_load_from_the_app(hub: Hub) -> None:
    page = hub.http.get(V1 + "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    # Nothing from elsewhere: no CDN, no validator service, no absolute URL at all.
    assert "//" not in re.sub(r"<!--.*?-->", "", html, flags=re.S)
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    referenced += re.findall(r"url: '([^']+)'", html)
    assert len(referenced) == 4, referenced
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}
    for url in referenced:
        assert url.startswith(V1 + "/"), url
        asset = hub.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
        kind = next(k for suffix, k in kinds.items() if url.endswith(suffix))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
    bundle = hub.http.get(V1 + "/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle


@pytest.mark.parametrize("name", ["../../etc/passwd", "swagger-editor.js", "index.html"])
def test_only_the_pages_assets_are_served(hub: Hub, name: str) -> None:
    assert hub.http.get(f"{V1}/docs/assets/{name}").status_code == 404
