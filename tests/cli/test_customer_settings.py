"""``otphub customer add --dialect``, ``customer set --dialect`` and what ``customer show``
says of a customer's dialect and referral code, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.cli.test_cli import ok, ok_json, refused, snapshot, sql

CODE = re.compile(r"[a-km-np-z2-9]{10}")


def test_add_with_a_dialect_and_show_it(url: str) -> None:
    plain = ok_json("customer", "add", "Plain")
    hero = ok_json("customer", "add", "Hero", "--dialect", "herosms")
    shown = ok_json("customer", "show", str(hero["id"]))
    assert shown["dialect"] == "herosms"
    assert ok_json("customer", "show", str(plain["id"]))["dialect"] == "sms-activate"
    stored = sql(url, "SELECT id, dialect FROM customers ORDER BY id")
    assert stored == [(plain["id"], "sms-activate"), (hero["id"], "herosms")]
    human = ok("customer", "show", str(hero["id"])).stdout
    assert f"dialect herosms, referral code {shown['referral_code']}" in human
    listed = ok_json("customer", "list")["customers"]
    assert [(c["id"], c["dialect"]) for c in listed] == [
        (plain["id"], "sms-activate"),
        (hero["id"], "herosms"),
    ]


def test_every_customer_gets_its_own_referral_code(url: str) -> None:
    ids = [ok_json("customer", "add", f"C{i}")["id"] for i in range(3)]
    codes = [ok_json("customer", "show", str(i))["referral_code"] for i in ids]
    assert all(CODE.fullmatch(code) for code in codes), codes
    assert len(set(codes)) == 3
    assert sql(url, "SELECT referral_code FROM customers ORDER BY id") == [(c,) for c in codes]


def test_set_the_dialect(url: str, world: dict[str, int]) -> None:
    c = str(world["c"])
    assert ok_json("customer", "set", c, "--dialect", "grizzly") == {
        "id": world["c"],
        "dialect": "grizzly",
    }
    assert ok_json("customer", "show", c)["dialect"] == "grizzly"
    result = ok("customer", "set", c, "--dialect", "HeroSMS")
    assert result.stdout == "" and f"customer {c}: dialect herosms" in result.stderr
    assert sql(url, "SELECT dialect FROM customers WHERE id = :c", c=world["c"]) == [("herosms",)]


@pytest.mark.parametrize(
    "args",
    [
        ("customer", "add", "X", "--dialect", "smsactivate"),
        ("customer", "set", "{c}", "--dialect", "5sim"),
        ("customer", "set", "{c}", "--dialect", ""),
    ],
    ids=["add", "set", "set-empty"],
)
def test_an_unknown_dialect_names_the_choices(
    url: str, world: dict[str, int], args: tuple[str, ...]
) -> None:
    before = snapshot(url)
    message = refused(*(a.format(**world) for a in args))
    assert message.startswith("error: unknown dialect"), message
    assert "sms-activate, grizzly, herosms" in message
    assert snapshot(url) == before


def test_set_refuses_an_unknown_customer_or_nothing_to_set(url: str, world: dict[str, int]) -> None:
    before = snapshot(url)
    assert "customer" in refused("customer", "set", str(world["missing"]), "--dialect", "grizzly")
    assert "--dialect" in refused("customer", "set", str(world["c"]))
    assert snapshot(url) == before
