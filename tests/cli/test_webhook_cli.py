"""``otphub customer webhook add|list|remove``, on SQLite and PostgreSQL: the JSON shapes,
the secret shown once, clear one-line refusals that change nothing."""

from __future__ import annotations

import re

import pytest

from otphub.domain import sealing
from tests.cli.test_cli import SECRET, ok, ok_json, one_json_object, refused, sql


@pytest.fixture
def private_allowed(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv("OTPHUB_WEBHOOK_ALLOW_PRIVATE", "true")
    return url


def webhook_rows(url: str) -> list[tuple[object, ...]]:
    return sql(url, "SELECT id, customer_id, url, removed_at FROM webhooks ORDER BY id")


def test_add_list_remove(private_allowed: str, world: dict[str, int]) -> None:
    url = private_allowed
    customer = str(world["c"])
    created = ok_json("customer", "webhook", "add", customer, "http://127.0.0.1:9/hook")
    assert set(created) == {"id", "secret"}
    assert isinstance(created["id"], int)
    assert isinstance(created["secret"], str) and created["secret"].startswith("ohw_")
    [(sealed,)] = sql(url, "SELECT sealed_secret FROM webhooks")
    assert sealing.unseal(SECRET.encode(), str(sealed)) == created["secret"]

    human = ok("customer", "webhook", "add", customer, "https://127.0.0.1:9443/other")
    match = re.search(
        r"webhook (\d+) added for https://127\.0\.0\.1:9443/other\n"
        r"signing secret \(shown once, not again\): (ohw_\S+)",
        human.stdout,
    )
    assert match is not None, human.stdout
    second_id = int(match.group(1))

    listed = ok_json("customer", "webhook", "list", customer)
    assert listed == {
        "webhooks": [
            {
                "id": created["id"],
                "url": "http://127.0.0.1:9/hook",
                "created_at": listed["webhooks"][0]["created_at"],
                "last_attempt_at": None,
                "last_error": None,
            },
            {
                "id": second_id,
                "url": "https://127.0.0.1:9443/other",
                "created_at": listed["webhooks"][1]["created_at"],
                "last_attempt_at": None,
                "last_error": None,
            },
        ]
    }
    assert all(isinstance(w["created_at"], int) for w in listed["webhooks"])
    table = ok("customer", "webhook", "list", customer).stdout
    assert "http://127.0.0.1:9/hook" in table and "https://127.0.0.1:9443/other" in table
    assert created["secret"] not in table

    removed = ok_json("customer", "webhook", "remove", str(created["id"]))
    assert removed == {"id": created["id"], "removed": True}
    assert [w["id"] for w in ok_json("customer", "webhook", "list", customer)["webhooks"]] == [
        second_id
    ]
    result = ok("customer", "webhook", "remove", str(second_id))
    assert result.stdout == "" and f"webhook {second_id} removed" in result.stderr
    assert one_json_object(ok("customer", "webhook", "list", customer, "--json").stdout) == {
        "webhooks": []
    }
    assert "has no webhooks" in ok("customer", "webhook", "list", customer).stdout


def test_refusals_are_one_line_and_change_nothing(
    private_allowed: str, world: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = private_allowed
    customer = str(world["c"])
    missing = str(world["missing"])
    assert "no customer" in refused("customer", "webhook", "add", missing, "http://127.0.0.1/")
    assert "http:// or https://" in refused(
        "customer", "webhook", "add", customer, "ftp://127.0.0.1/", "--json"
    )
    assert "user name or password" in refused(
        "customer", "webhook", "add", customer, "http://a:b@127.0.0.1/"
    )
    assert "no webhook" in refused("customer", "webhook", "remove", "12345", "--json")
    assert "no customer" in refused("customer", "webhook", "list", missing, "--json")
    for i in range(3):
        ok_json("customer", "webhook", "add", customer, f"http://127.0.0.1:9/{i}")
    assert "3 webhooks already" in refused(
        "customer", "webhook", "add", customer, "http://127.0.0.1:9/3", "--json"
    )
    before = webhook_rows(url)
    monkeypatch.setenv("OTPHUB_WEBHOOK_ALLOW_PRIVATE", "false")
    ok_json("customer", "webhook", "remove", str(before[0][0]))
    message = refused("customer", "webhook", "add", customer, "http://localhost:9/x", "--json")
    assert "resolves to" in message and "OTPHUB_WEBHOOK_ALLOW_PRIVATE" in message
    assert [r[0] for r in webhook_rows(url) if r[3] is None] == [r[0] for r in before[1:]]
