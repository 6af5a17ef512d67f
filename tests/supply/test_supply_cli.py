"""``otphub catalog alias`` and the remote columns of ``otphub provider list/show``, on
both databases (in-process, as tests/cli does)."""

from __future__ import annotations

from tests.cli.test_cli import cli, ok, ok_json, one_json_object, url, world

__all__ = ["url", "world"]


def test_alias_add_list_remove(url: str) -> None:
    added = ok_json("catalog", "alias", "add", "Great-Britain!", "16")
    assert added == {"name": "greatbritain", "country": 16}
    ok_json("catalog", "alias", "add", "oz", "175")
    assert ok_json("catalog", "alias", "list") == {
        "aliases": [{"name": "greatbritain", "country": 16}, {"name": "oz", "country": 175}]
    }
    assert "greatbritain" in ok("catalog", "alias", "list").stdout
    assert ok_json("catalog", "alias", "remove", "oz") == {"name": "oz", "removed": True}
    assert ok_json("catalog", "alias", "list")["aliases"] == [
        {"name": "greatbritain", "country": 16}
    ]


def test_alias_refusals_are_one_line_errors(url: str) -> None:
    for args in (
        ("catalog", "alias", "add", "greatbritain", "99999"),  # unknown country
        ("catalog", "alias", "add", "!!!", "16"),  # nothing left of the name
        ("catalog", "alias", "remove", "nosuchalias"),
    ):
        refused = cli(*args)
        assert refused.exit_code != 0
        assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1
    ok("catalog", "alias", "add", "britain", "16")
    assert cli("catalog", "alias", "add", "Britain", "16").exit_code != 0  # exists


def test_provider_list_and_show_name_kind_endpoint_and_health(
    url: str, world: dict[str, int]
) -> None:
    created = ok_json("provider", "add", "Bank", "--agent-url", "http://127.0.0.1:9/agent")
    listed = ok_json("provider", "list")["providers"]
    agent = next(p for p in listed if p["id"] == created["id"])
    assert agent["kind"] == "agent"
    assert agent["endpoint"] == "http://127.0.0.1:9/agent"
    assert agent["up"] is True and agent["polled_at"] is None and agent["last_error"] is None
    local = next(p for p in listed if p["id"] == world["p"])
    assert local["kind"] == "local" and local["endpoint"] is None
    shown = ok("provider", "show", str(created["id"])).stdout
    assert "agent at http://127.0.0.1:9/agent: up, never polled" in shown
    shown_json = one_json_object(ok("provider", "show", str(created["id"]), "--json").stdout)
    assert shown_json["kind"] == "agent"
