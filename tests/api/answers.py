"""Reading customer-API answers the way the golden tests demand: HTTP 200, the exact
Content-Type, no BOM, no trailing whitespace or newline."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Hub

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"


def exact(response: httpx.Response, content_type: str = TEXT) -> str:
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == content_type, response.headers["content-type"]
    raw = response.content
    assert not raw.startswith(b"\xef\xbb\xbf"), raw
    assert not raw.endswith((b"\n", b"\r", b" ", b"\t")), raw
    return raw.decode("utf-8")


def word(hub: Hub, key: str | None, action: str | None, **params: Any) -> str:
    """A plain-text answer (every error word, and the text actions)."""
    return exact(hub.api(key, action, **params), TEXT)


def document(hub: Hub, key: str | None, action: str | None, **params: Any) -> str:
    """A JSON answer, returned as its exact text."""
    return exact(hub.api(key, action, **params), JSON)
