"""Operations: health and readiness, Prometheus metrics (behind their token), online
backups."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from otphub.cli import app as cli
from tests.statements import recorded
from tests.support import Hub

runner = CliRunner()
TOKEN = "metrics-token-for-the-tests-0123456789"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"metrics_token": TOKEN}


def test_healthz_and_readyz(hub: Hub) -> None:
    assert (hub.http.get("/healthz").status_code, hub.http.get("/healthz").text) == (200, "OK")
    ready = hub.http.get("/readyz")
    assert (ready.status_code, ready.text) == (200, "READY")


def test_readyz_says_not_ready_when_the_database_is_down(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> object:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(hub.rt.db, "read", down)
    answer = hub.http.get("/readyz")
    assert (answer.status_code, answer.text) == (503, "NOT_READY")
    assert hub.http.get("/healthz").status_code == 200


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == name:
            return float(value)
    raise AssertionError(f"{name} not in metrics")


def test_metrics(hub: Hub) -> None:
    seller = hub.stocked(count=3)
    key = hub.customer("10.00")
    finished, phone = hub.buy(key)
    hub.push_sms(seller, phone, "code 12345")
    hub.say(key, "setStatus", id=finished, status=6)
    hub.buy(key)
    hub.say(key, "getStatus", id=999)
    hub.clock.advance(5000)
    answer = hub.http.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    body = answer.text
    assert 'otphub_requests_total{action="getNumber",answer="ACCESS_NUMBER"}' in body
    assert 'otphub_requests_total{action="getStatus",answer="NO_ACTIVATION"}' in body
    assert 'otphub_sms_pushes_total{outcome="matched"}' in body
    assert metric(body, "otphub_open_holds") == 1
    assert metric(body, "otphub_open_holds_amount_minor") == 50
    assert metric(body, "otphub_live_activations") == 1
    assert metric(body, "otphub_free_numbers") == 2
    # The live activation is 5000 - 1200 seconds past its deadline: the sweeper is late.
    assert metric(body, "otphub_sweeper_lag_seconds") == 3800
    assert metric(body, "otphub_purchases_total") >= 2
    assert metric(body, "otphub_captures_total") >= 1
    # Codes and keys never appear in metrics.
    # (as a whole token: a sample's float value may contain those digits by chance)
    assert re.search(r"(?<![\d.])12345(?![\d.])", body) is None
    assert key not in body
    # No `_created` timestamps: they only double the scrape.
    assert "_created" not in body


@pytest.mark.parametrize("hub_settings", [{}])
def test_metrics_are_off_without_a_token(hub: Hub) -> None:
    hub.stocked(count=1)
    answer = hub.http.get("/metrics")
    # As any path that does not exist: nothing tells a stranger what runs here.
    assert (answer.status_code, answer.text) == (404, "Not Found")
    assert (hub.http.get("/metrics", headers=SCRAPE).status_code) == 404
    assert (hub.http.get("/nothing-here").status_code) == 404


def test_metrics_need_their_bearer_token(hub: Hub) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        refused = hub.http.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert "otphub_" not in refused.text
    answer = hub.http.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert answer.status_code == 200
    assert "otphub_open_holds" in answer.text


@pytest.mark.parametrize("hub_settings", [{"metrics_token": TOKEN, "auth_failures_per_minute": 2}])
def test_guessing_the_metrics_token_is_limited_per_address(hub: Hub) -> None:
    wrong = {"Authorization": "Bearer wrong-token-0123456789abcdef"}
    assert [hub.http.get("/metrics", headers=wrong).status_code for _ in range(2)] == [401, 401]
    refused = hub.http.get("/metrics", headers=wrong)
    assert (refused.status_code, refused.text) == (429, "TOO_MANY_REQUESTS")
    assert int(refused.headers["retry-after"]) >= 1
    # As for keys, the failure limit never refuses the right token (one NAT, many scrapers).
    assert hub.http.get("/metrics", headers=SCRAPE).status_code == 200


def test_a_short_metrics_token_is_refused_in_one_line() -> None:
    env = {"OTPHUB_METRICS_TOKEN": "short", "OTPHUB_SECRET": "a-secret-of-enough-length"}
    result = runner.invoke(cli, ["serve"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: bad setting: OTPHUB_METRICS_TOKEN: ")
    assert "at least 16 characters" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "short" not in result.stderr.split("OTPHUB_METRICS_TOKEN")[1]


def test_metric_gauges_do_not_read_the_journal(hub: Hub) -> None:
    """Every purchase ever made stays in the journal, and open holds used to be found by a
    NOT IN over all of it at every scrape; the wallets and the live activations say the
    same (the audit checks that they do)."""
    hub.stocked(count=2)
    history = hub.stocked(count=15, first_phone=79000000100)
    key = hub.customer("20.00")
    for _ in range(15):  # history: a hold and its release each (a new number each time:
        # the customer never gets back a number they cancelled)
        activation_id, _phone = hub.buy(key, providerIds=history.id)
        hub.clock.advance(121)
        assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    hub.buy(key, exceptProviderIds=history.id)
    hub.buy(key, exceptProviderIds=history.id)  # two live activations, two open holds
    with recorded(hub.rt.db) as statements:
        body = hub.http.get("/metrics", headers=SCRAPE).text
    assert metric(body, "otphub_open_holds") == 2
    assert metric(body, "otphub_open_holds_amount_minor") == 100
    assert metric(body, "otphub_live_activations") == 2
    assert metric(body, "otphub_free_numbers") == 15  # the history's numbers
    assert any(s.reads("activations") for s in statements)
    assert [s.sql for s in statements if s.reads("journal")] == []


def test_backup_is_an_online_consistent_copy(hub: Hub, tmp_path: Path) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "code 12345")
    hub.say(key, "setStatus", id=activation_id, status=6)
    hub.buy(key)  # a live hold in the copy
    target = tmp_path / "copies" / "otphub-backup.db"
    env = {
        "OTPHUB_DATABASE_URL": hub.rt.settings.database_url,
        "OTPHUB_SECRET": "ops-test-secret-0123",
    }
    result = runner.invoke(cli, ["backup", str(target)], env=env)
    if hub.backend == "postgresql":
        assert result.exit_code == 1
        assert "pg_dump" in result.stderr
        assert not target.exists()
        return
    assert result.exit_code == 0, result.stderr
    assert "integrity check ok" in result.stderr
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT COUNT(*) FROM activations").fetchone() == (2,)
    audited = runner.invoke(
        cli, ["audit"], env={**env, "OTPHUB_DATABASE_URL": f"sqlite:///{target}"}
    )
    assert audited.exit_code == 0, audited.stderr
    assert "wallets 9.50 (held 0.50)" in audited.stderr
    again = runner.invoke(cli, ["backup", str(target)], env=env)
    assert again.exit_code == 1
    assert "never overwrites" in again.stderr
