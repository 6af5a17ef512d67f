"""What any answer to hostile input may and may not be, shared by the fuzz modules."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"
CUSTOMER_PATHS = ("/stubs/handler_api.php", "/handler_api.php")
AGENT_PATH = "/agent/api/sms"

# Nothing of the inside may reach a client: a trace, SQL, a driver, a source file.
_LEAKS_CASED = ("Traceback", 'File "', "SELECT ", "INSERT ", "UPDATE ", "DELETE ", " WHERE ")
_LEAKS_LOWER = ("sqlalchemy", "psycopg", "asyncpg", "aiosqlite", "sqlite3", "/src/otphub", ".py")

# Every word the customer API may answer with (customer-api.md), successes and errors.
# ERROR_SQL is deliberately absent: see ``customer_answer``.
_WORD = re.compile(
    r"NO_KEY|BAD_KEY|BANNED:'\d{4}-\d{1,2}-\d{1,2} \d{1,2}-\d{1,2}-\d{1,2}'|BAD_ACTION"
    r"|BAD_SERVICE|BAD_COUNTRY|BAD_STATUS|NO_NUMBERS|NO_BALANCE|WRONG_MAX_PRICE:\d+\.\d{2}"
    r"|WRONG_EXCEPTION_PHONE|CHANNELS_LIMIT|ORDER_ALREADY_EXISTS|NO_ACTIVATION|NO_ACTIVATIONS"
    r"|WRONG_ACTIVATION_ID|EARLY_CANCEL_DENIED|WRONG_DATE|OPERATORS_NOT_FOUND"
    r"|ACCESS_BALANCE:-?\d+\.\d{2}|ACCESS_NUMBER:\d+:\d+|ACCESS_READY|ACCESS_RETRY_GET"
    r"|ACCESS_ACTIVATION|ACCESS_CANCEL|STATUS_WAIT_CODE|STATUS_CANCEL"
    r"|STATUS_OK:[^:]*|STATUS_WAIT_RETRY:[^:]*|FULL_SMS:.*",
    re.DOTALL,
)
# The abuse limits (request rate, body size) may answer 429/413 with a plain word.
_LIMIT_STATUSES = (413, 429)
_LIMIT_WORD = re.compile(rb"[A-Z][A-Z0-9_]*(:[ -~]*)?")


def assert_no_leak(response: httpx.Response) -> None:
    text = response.content.decode("utf-8", "replace")
    lower = text.lower()
    for marker in _LEAKS_CASED:
        assert marker not in text, (marker, response.status_code, text[:2000])
    for marker in _LEAKS_LOWER:
        assert marker not in lower, (marker, response.status_code, text[:2000])
    for name, value in response.headers.items():
        assert "traceback" not in value.lower(), (name, value)


def assert_not_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:2000])


def customer_answer(response: httpx.Response) -> str:
    """Check one answer of the customer API to a GET or POST and return a short label of it:
    the word (its part before ``:``), ``JSON``, or ``HTTP 429``/``HTTP 413``.

    ``ERROR_SQL`` is a failure here: these tests run against a healthy database, so it can
    only mean that some input reached an unexpected exception (and a log line with a trace).
    """
    assert_not_5xx(response)
    assert_no_leak(response)
    raw = response.content
    if response.status_code in _LIMIT_STATUSES:
        assert response.headers["content-type"].startswith("text/plain"), response.headers
        assert _LIMIT_WORD.fullmatch(raw), (response.status_code, raw[:200])
        return f"HTTP {response.status_code}"
    assert response.status_code == 200, (response.status_code, raw[:2000])
    assert not raw.startswith(b"\xef\xbb\xbf"), raw[:200]
    assert not raw.endswith((b"\n", b"\r", b" ", b"\t")), raw[-200:]
    content_type = response.headers.get("content-type")
    if content_type == JSON:
        json.loads(raw)
        return "JSON"
    assert content_type == TEXT, (content_type, raw[:200])
    body = raw.decode("utf-8")
    assert body != "ERROR_SQL", "ERROR_SQL on a healthy database: an input reached a failure"
    assert _WORD.fullmatch(body), body[:2000]
    return body.split(":", 1)[0]


def agent_answer(response: httpx.Response) -> dict[str, Any]:
    """Check one answer of ``POST /agent/api/sms``: JSON with ``status``; SUCCESS with 200,
    ERROR with a 4xx (the agent resends on anything else, forever)."""
    assert_not_5xx(response)
    assert_no_leak(response)
    assert response.headers.get("content-type") == JSON, (response.headers, response.content)
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    if response.status_code == 200:
        assert body == {"status": "SUCCESS"}, body
    else:
        assert 400 <= response.status_code < 500, (response.status_code, body)
        assert body.get("status") == "ERROR", body
        assert isinstance(body.get("error"), str), body
        assert body["error"], body
    return body
