"""The operator's commands (issue 8, sections 2 and 3), on SQLite and PostgreSQL.

Tests that need activations run a live deployment (``hub``) and the command on the same
database (``url``); the ``hub`` fixture audits the ledger after each of them, so every refund
and adjustment here is also checked against the journal.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from otphub.db import reports as db_reports
from otphub.db.schema import accounts, journal, providers, sms
from otphub.domain import codes
from otphub.services import reports
from tests.cli.test_cli import (
    balance_of_customer,
    cli,
    offers_of,
    ok,
    ok_json,
    refused,
    snapshot,
    sql,
)
from tests.support import Hub, Seller

# ---------------------------------------------------------------- helpers


def finished(hub: Hub, seller: Seller, key: str, service: str = "tg") -> tuple[int, str]:
    """Buy, receive a code, finish: the customer paid."""
    activation_id, phone = hub.buy(key, service=service)
    assert hub.push_sms(seller, phone, "code 12345").status_code == 200
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    return activation_id, phone


def payable(url: str, provider_id: int) -> int:
    rows = sql(
        url,
        "SELECT a.balance FROM accounts a JOIN providers p ON p.account_id = a.id WHERE p.id = :p",
        p=provider_id,
    )
    return int(rows[0][0])


def journal_of(url: str, activation_id: int) -> list[tuple[Any, ...]]:
    return sql(
        url,
        "SELECT kind, amount, note FROM journal WHERE activation_id = :a ORDER BY id",
        a=activation_id,
    )


def number_ids(url: str) -> dict[str, int]:
    return {str(phone): int(i) for i, phone in sql(url, "SELECT id, phone FROM numbers")}


def ids_of(listed: dict[str, Any], field: str) -> list[int]:
    return [int(row["id"]) for row in listed[field]]


# ---------------------------------------------------------------- disputes: refunds


def test_refund_gives_the_price_back_and_takes_back_payout_and_margin(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=2)  # price 0.50, payout 0.40
    customer_id, key = hub.customer_id("5.00")
    activation_id, _ = finished(hub, seller, key)
    revenue_before = hub.audit().totals["revenue"]
    assert balance_of_customer(url, customer_id) == 450
    assert payable(url, seller.id) == 40

    done = ok_json("activation", "refund", str(activation_id), "--reason", "code never worked")
    assert done == {
        "id": activation_id,
        "customer": customer_id,
        "provider": seller.id,
        "refunded": "0.50",
        "from_provider": "0.40",
        "from_referrer": "0.00",  # issue 10: no referrer named by this activation
        "from_margin": "0.10",
        "reason": "code never worked",
    }
    assert balance_of_customer(url, customer_id) == 500
    assert payable(url, seller.id) == 0
    assert hub.audit().totals["revenue"] == revenue_before - 10
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:5.00"
    # New rows only: the hold, capture and share are still there as they were.
    assert journal_of(url, activation_id) == [
        ("hold", 50, None),
        ("capture", 50, None),
        ("share", 40, None),
        ("refund", 50, "code never worked"),
        ("clawback", 40, None),
    ]
    assert sql(url, "SELECT state FROM activations WHERE id = :a", a=activation_id) == [
        ("finished",)
    ]

    before = snapshot(url)
    message = refused("activation", "refund", str(activation_id), "--reason", "again")
    assert "refunded already" in message and "code never worked" in message
    refused("activation", "refund", str(activation_id), "--reason", "again", "--json")
    assert snapshot(url) == before


def test_refund_human_output(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=1, payout="0.50")  # the provider gets the whole price
    key = hub.customer()
    activation_id, _ = finished(hub, seller, key)
    result = ok("activation", "refund", str(activation_id), "--reason", "complaint 17")
    assert result.stdout == ""
    assert f"activation {activation_id} refunded: 0.50 back to customer" in result.stderr
    assert "0.50 from provider" in result.stderr and "0.00 from the margin" in result.stderr


def test_a_refund_after_the_payout_leaves_the_provider_owing(hub: Hub, url: str) -> None:
    """The provider was paid its payable already: the refund still happens, and the payable
    goes below zero (the provider owes the operator)."""
    seller = hub.stocked(count=1)
    key = hub.customer()
    paid, _ = finished(hub, seller, key)

    async def pay_out() -> None:
        # The rows a payout writes (no command for it yet): provider -> external.
        async with hub.rt.db.write() as conn:
            account_id = (
                await conn.execute(
                    select(providers.c.account_id).where(providers.c.id == seller.id)
                )
            ).scalar_one()
            await conn.execute(
                journal.insert().values(
                    kind="payout",
                    debit_account_id=account_id,
                    credit_account_id=hub.rt.accounts().external,
                    amount=40,
                    created_at=hub.clock.now(),
                )
            )
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(balance=accounts.c.balance - 40)
            )

    hub.call(pay_out())
    assert payable(url, seller.id) == 0
    # The note about owing is for a payable below zero only (it was printed for 0.00 too).
    assert "owes" not in ok("provider", "show", str(seller.id)).stdout
    ok("activation", "refund", str(paid), "--reason", "complaint")
    assert payable(url, seller.id) == -40
    assert ok_json("provider", "show", str(seller.id))["payable"] == "-0.40"
    human = ok("provider", "show", str(seller.id)).stdout
    assert "payable -0.40 (below zero: the provider owes the operator)" in human


def test_get_history_shows_a_refunded_activation_as_not_paid(hub: Hub, url: str) -> None:
    """Golden: a refunded activation answers status "8" (the money went back), like a
    cancelled one; its cost stays what it was bought at."""
    seller = hub.stocked(count=3)
    key = hub.customer()
    start = hub.clock.now()
    refunded_id, refunded_phone = finished(hub, seller, key)
    hub.clock.advance(10)
    kept_id, kept_phone = finished(hub, seller, key)
    ok("activation", "refund", str(refunded_id), "--reason", "complaint")
    t0 = hub.rt.timestamp(start)
    t1 = hub.rt.timestamp(start + 10)
    assert hub.say(key, "getHistory") == (
        f'[{{"id":{kept_id},"date":"{t1}","phone":"{kept_phone}","sms":["code 12345"],'
        f'"cost":0.5,"status":"6","currency":840}},'
        f'{{"id":{refunded_id},"date":"{t0}","phone":"{refunded_phone}","sms":["code 12345"],'
        f'"cost":0.5,"status":"8","currency":840}}]'
    )


def test_only_a_finished_activation_can_be_refunded(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=3)
    key = hub.customer()
    cancelled, _ = hub.buy(key)
    hub.clock.advance(120)
    assert hub.say(key, "setStatus", id=cancelled, status=8) == "ACCESS_CANCEL"
    live, phone = hub.buy(key)
    hub.push_sms(seller, phone, "code 55555")
    paid, _ = finished(hub, seller, key)
    before = snapshot(url)
    for args, word in [
        ((str(cancelled), "--reason", "x"), "cancelled"),
        ((str(live), "--reason", "x"), "code"),
        (("999999", "--reason", "x"), "no activation"),
        ((str(paid), "--reason", "   "), "reason"),
        ((str(paid), "--reason", "x" * 201), "reason"),
    ]:
        message = refused("activation", "refund", *args)
        assert message.startswith("error:") and word in message, message
    assert snapshot(url) == before


# ---------------------------------------------------------------- disputes: provider quality


def test_provider_counts_sms_without_a_code_and_refunds(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=3)  # 79000000001..3
    other = hub.stocked(count=1, service="wa", first_phone=79000000100)
    key = hub.customer()
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Hello! Welcome aboard")  # matched, no code
    hub.push_sms(seller, phone, "Your code: 48213")  # matched, a code
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    ok("activation", "refund", str(activation_id), "--reason", "the first SMS had no code")
    idle = next(p for p in ("79000000001", "79000000002", "79000000003") if p != phone)
    hub.push_sms(seller, idle, "G-123456 is your Google verification code")  # unmatched
    hub.push_sms(seller, idle, "Promo: 50% off")  # unmatched, no code

    shown = ok_json("provider", "show", str(seller.id))
    assert {k: shown[k] for k in ("finished", "refunded", "sms", "sms_without_code")} == {
        "finished": 1,
        "refunded": 1,
        "sms": 4,
        "sms_without_code": 2,
    }
    assert shown["sms_unmatched"] == 2
    assert shown["numbers"] == 3 and shown["numbers_online"] == 3 and shown["offers"] == 1
    assert len(shown["keys"]) == 1 and shown["keys"][0]["revoked_at"] is None
    listed = {p["id"]: p for p in ok_json("provider", "list")["providers"]}
    assert listed[seller.id] == {k: v for k, v in shown.items() if k != "keys"}
    assert listed[other.id]["refunded"] == 0 and listed[other.id]["sms_without_code"] == 0
    human = ok("provider", "show", str(seller.id)).stdout
    assert "refunded 1" in human and "without a recognisable code 2" in human


CODE_TEXTS = [
    "Your code: 48213",
    "Telegram code 991-204",
    "G-123456 is your Google verification code",
    "48213",
    "1234",
    "12345678",
    "123456789",
    "Hello",
    "abc: def",
    "Pay 1,234.56 now",
    "call +7 900 123 45 67",
    "code 12",
    "",
    "99:99",
    "x" * 300,
]


def test_the_no_code_count_agrees_with_code_extraction(hub: Hub) -> None:
    """The per-provider count is SQL; codes.extract_code decides what a code is. Both agree
    on texts with and without codes (stored as the SMS endpoint stores them)."""
    seller = hub.provider()

    def recognised(text: str) -> bool:
        patterns = (codes._PREFIXED, codes._SPLIT, codes._PLAIN)
        return any(p.search(text) for p in patterns)

    async def count() -> int:
        async with hub.rt.db.write() as conn:
            for i, text in enumerate(CODE_TEXTS):
                await conn.execute(
                    sms.insert().values(
                        provider_id=seller.id,
                        provider_sms_id=i,
                        phone="79000000001",
                        text=text,
                        code=codes.extract_code(text),
                        received_at=0,
                    )
                )
        async with hub.rt.db.read() as conn:
            row = await db_reports.provider(conn, seller.id)
        assert row is not None
        return row.sms_without_code

    expected = sum(not recognised(t) for t in CODE_TEXTS)
    assert 0 < expected < len(CODE_TEXTS)
    assert hub.call(count()) == expected


# ---------------------------------------------------------------- offers


def test_offer_set_keeps_the_payout_of_an_existing_offer(url: str) -> None:
    provider = ok_json("provider", "add", "Seller")
    where = ("--provider", str(provider["id"]), "--service", "tg", "--country", "0")
    created = ok_json("offer", "set", *where, "--price", "0.50")
    assert created == {
        "id": created["id"],
        "provider": provider["id"],
        "service": "tg",
        "country": 0,
        "price": "0.50",
        "payout": "0.50",  # a new offer: the whole price
        "margin": "0.00",
        "ttl": None,
        "enabled": True,
    }
    ok("offer", "set", *where, "--price", "0.50", "--payout", "0.40", "--ttl", "600")
    changed = ok("offer", "set", *where, "--price", "0.60")
    assert changed.stdout == ""
    assert "price 0.60, payout 0.40 (margin 0.20)" in changed.stderr
    assert offers_of(url, provider["id"]) == [("tg", 0, 60, 40)]
    assert sql(url, "SELECT ttl FROM offers") == [(600,)]

    before = snapshot(url)
    message = refused("offer", "set", *where, "--price", "0.30")
    assert "payout 0.40 is above the new price 0.30" in message
    assert snapshot(url) == before
    ok("offer", "set", *where, "--price", "0.30", "--payout", "0.30")
    assert offers_of(url, provider["id"]) == [("tg", 0, 30, 30)]


def test_offer_list_filters(url: str, world: dict[str, int]) -> None:
    p = str(world["p"])
    ok("offer", "set", "--provider", p, "--service", "wa", "--country", "16", "--price", "0.90")
    everything = ok_json("offer", "list")["offers"]
    assert [(o["service"], o["country"]) for o in everything] == [("tg", 0), ("wa", 16)]
    assert everything[0]["price"] == "0.50" and everything[0]["payout"] == "0.40"
    assert [o["service"] for o in ok_json("offer", "list", "--service", "wa")["offers"]] == ["wa"]
    assert [o["country"] for o in ok_json("offer", "list", "--country", "0")["offers"]] == [0]
    assert ok_json("offer", "list", "--provider", str(world["missing"]))["offers"] == []
    tg = everything[0]["id"]
    ok("offer", "disable", str(tg))
    assert ids_of(ok_json("offer", "list", "--disabled"), "offers") == [tg]
    assert tg not in ids_of(ok_json("offer", "list", "--enabled"), "offers")
    assert ok_json("offer", "list", "--limit", "1")["offers"][0]["id"] == tg
    human = ok("offer", "list").stdout.splitlines()
    assert human[0].split() == [
        "id",
        "provider",
        "service",
        "country",
        "price",
        "payout",
        "ttl",
        "enabled",
    ]
    assert len(human) == 3


def test_offer_disable_hides_it_from_sales_and_price_lists(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer()
    (offer_id,) = [
        r[0] for r in sql(url, "SELECT id FROM offers WHERE provider_id = :p", p=seller.id)
    ]
    assert '"tg"' in hub.say(key, "getPrices", service="tg", country=0)
    shown = ok_json("offer", "disable", str(offer_id))
    assert shown["id"] == offer_id and shown["enabled"] is False
    assert '"tg"' not in hub.say(key, "getPrices", service="tg", country=0)
    assert hub.say(key, "getNumber", service="tg", country=0) == "NO_NUMBERS"
    # Changing its price does not put it back on sale behind the operator's back.
    ok(
        "offer",
        "set",
        "--provider",
        str(seller.id),
        "--service",
        "tg",
        "--country",
        "0",
        "--price",
        "0.55",
    )
    assert hub.say(key, "getNumber", service="tg", country=0) == "NO_NUMBERS"
    result = ok("offer", "enable", str(offer_id))
    assert "disabled" not in result.stderr and result.stdout == ""
    assert '"tg"' in hub.say(key, "getPrices", service="tg", country=0)
    hub.buy(key)


# ---------------------------------------------------------------- numbers


def test_number_list_filters(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=2, operator="mts")
    other = hub.stocked(
        count=1, country=16, first_phone=447700900001, service="wa", operator="vodafone"
    )
    key = hub.customer()
    _, busy_phone = hub.buy(key)
    everything = ok_json("number", "list")["numbers"]
    assert {n["phone"] for n in everything} == {"79000000001", "79000000002", "447700900001"}
    busy = ok_json("number", "list", "--status", "busy")["numbers"]
    assert [n["phone"] for n in busy] == [busy_phone] and busy[0]["in_use"] is True
    free = ok_json("number", "list", "--status", "free", "--provider", str(seller.id))
    assert [n["phone"] for n in free["numbers"]] != [busy_phone]
    assert len(free["numbers"]) == 1
    assert [n["provider"] for n in ok_json("number", "list", "--country", "16")["numbers"]] == [
        other.id
    ]
    assert len(ok_json("number", "list", "--operator", "MTS")["numbers"]) == 2
    assert len(ok_json("number", "list", "--phone", "4477")["numbers"]) == 1
    ok("number", "disable", str(number_ids(url)["447700900001"]))
    offline = ok_json("number", "list", "--status", "offline")["numbers"]
    assert [n["phone"] for n in offline] == ["447700900001"]
    assert "offline" in ok("number", "list").stdout


def test_number_disable_enable_remove(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer()
    live, phone = hub.buy(key)
    ids = number_ids(url)
    busy = ids[phone]
    (free,) = [i for p, i in ids.items() if p != phone]

    before = snapshot(url)
    message = refused("number", "remove", str(busy))
    assert f"live activation {live}" in message
    assert snapshot(url) == before

    assert ok_json("number", "disable", str(free))["online"] is False
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    enabled = ok("number", "enable", str(free))
    assert enabled.stdout == "" and "online" in enabled.stderr
    second, _ = hub.buy(key)

    # A number that was sold keeps its activations: it can only be taken offline.
    hub.clock.advance(120)
    assert hub.say(key, "setStatus", id=second, status=8) == "ACCESS_CANCEL"
    before = snapshot(url)
    assert "past activations" in refused("number", "remove", str(free))
    assert snapshot(url) == before
    # Never a number in a live activation: disable and enable are refused, nothing changes,
    # and the customer's activation is untouched; once it has ended, disable works.
    for switch in ("disable", "enable"):
        before = snapshot(url)
        assert f"live activation {live}" in refused("number", switch, str(busy))
        assert snapshot(url) == before
    hub.push_sms(seller, phone, "code 77777")
    assert hub.say(key, "getStatus", id=live) == "STATUS_OK:77777"
    assert hub.say(key, "setStatus", id=live, status=6) == "ACCESS_ACTIVATION"
    assert ok_json("number", "disable", str(busy))["online"] is False

    ok("number", "add", "--provider", str(seller.id), "--country", "0", "79000000009")
    fresh = number_ids(url)["79000000009"]
    removed = ok_json("number", "remove", str(fresh))
    assert removed["id"] == fresh and removed["phone"] == "79000000009"
    assert "79000000009" not in number_ids(url)


# ---------------------------------------------------------------- activations and SMS


def test_activation_list_and_show(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=2)
    other = hub.stocked(count=1, service="wa", first_phone=79000000100)
    first_customer, first_key = hub.customer_id()
    second_customer, second_key = hub.customer_id()
    t0 = hub.clock.now()
    paid, _ = finished(hub, seller, first_key)
    hub.clock.advance(3600)
    live, _ = hub.buy(second_key, service="wa")

    def listed(*args: str) -> list[int]:
        return ids_of(ok_json("activation", "list", *args), "activations")

    assert listed() == [live, paid]
    assert listed("--customer", str(first_customer)) == [paid]
    assert listed("--customer", str(second_customer)) == [live]
    assert listed("--provider", str(other.id)) == [live]
    assert listed("--state", "waiting") == [live]
    assert listed("--state", "finished,cancelled") == [paid]
    assert listed("--since", str(t0 + 1)) == [live]
    assert listed("--until", str(t0 + 1)) == [paid]
    assert listed("--limit", "1") == [live]
    ok("activation", "refund", str(paid), "--reason", "customer complaint 42")
    assert listed("--refunded") == [paid]
    assert listed("--not-refunded") == [live]
    row = ok_json("activation", "list", "--customer", str(first_customer))["activations"][0]
    assert row["state"] == "finished" and row["refunded"] is True and row["price"] == "0.50"
    assert "finished (refunded)" in ok("activation", "list").stdout

    shown = ok_json("activation", "show", str(paid))
    assert shown["id"] == paid and shown["state"] == "finished" and shown["refunded"] is True
    assert shown["refund_reason"] == "customer complaint 42"
    assert [m["text"] for m in shown["sms"]] == ["code 12345"]
    assert [j["kind"] for j in shown["journal"]] == [
        "hold",
        "capture",
        "share",
        "refund",
        "clawback",
    ]
    human = ok("activation", "show", str(live)).stdout
    assert f"activation {live}: waiting" in human
    assert "refund" not in human


def test_activation_dates(url: str) -> None:
    assert reports.parse_time("2026-11-29", option="--since") == 1795910400
    assert reports.parse_time("2026-11-29T01:00", option="--since") == 1795910400 + 3600
    assert reports.parse_time("2026-11-29 01:00:30", option="--since") == 1795910400 + 3630
    assert reports.parse_time("1795910400", option="--since") == 1795910400
    for bad in ("yesterday", "2026-13-01", "29.11.2026", "-5"):
        message = refused("activation", "list", "--since", bad)
        assert "--since" in message, message


def test_unmatched_sms(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=2)
    quiet = hub.stocked(count=1, service="wa", first_phone=79000000100)
    key = hub.customer()
    _, phone = hub.buy(key)
    hub.push_sms(seller, phone, "code 12345")  # matched: not listed
    idle = "79000000002" if phone == "79000000001" else "79000000001"
    hub.push_sms(seller, idle, "Your code: 31337", sms_id=7)
    hub.push_sms(quiet, "79000000100", "nobody is waiting", sms_id=8)
    found = ok_json("sms", "unmatched")["sms"]
    assert [(m["phone"], m["text"]) for m in found] == [
        ("79000000100", "nobody is waiting"),
        (idle, "Your code: 31337"),
    ]
    assert found[1]["sms_id"] == 7 and found[1]["provider"] == seller.id
    assert [
        m["sms_id"] for m in ok_json("sms", "unmatched", "--provider", str(quiet.id))["sms"]
    ] == [8]
    assert ok_json("sms", "unmatched", "--since", "2999-01-01")["sms"] == []
    assert "nobody is waiting" in ok("sms", "unmatched").stdout


# ---------------------------------------------------------------- customers and money


def test_customer_list_and_show(hub: Hub, url: str) -> None:
    hub.stocked(count=1)
    alice, key = hub.customer_id("3.00", name="Alice")
    hub.buy(key)
    bob, _ = hub.customer_id("1.00", name="Bob")
    ok("customer", "ban", str(alice), "--days", "1")
    ok("customer", "limits", str(alice), "--max-live", "5")
    listed = {c["id"]: c for c in ok_json("customer", "list")["customers"]}
    assert set(listed) == {alice, bob}
    row = listed[alice]
    assert (row["balance"], row["held"], row["available"]) == ("3.00", "0.50", "2.50")
    assert row["max_live"] == 5 and row["rate_limit"] is None and row["active_keys"] == 1
    assert isinstance(row["banned_until"], int)
    assert ids_of(ok_json("customer", "list", "--search", "BO"), "customers") == [bob]

    shown = ok_json("customer", "show", str(alice))
    assert set(shown) == set(row) | {"keys"}
    assert {k: shown[k] for k in row} == row
    assert len(shown["keys"]) == 1 and key.startswith(shown["keys"][0]["hint"])
    human = ok("customer", "show", str(alice)).stdout
    assert "available 2.50" in human and "banned until" in human and "max live 5" in human
    assert "Alice" in ok("customer", "list").stdout


def test_customer_adjust(hub: Hub, url: str) -> None:
    hub.stocked(count=1)
    customer_id, key = hub.customer_id("1.00")
    hub.buy(key)  # 0.50 held: 0.50 available
    c = str(customer_id)
    before = snapshot(url)
    message = refused("customer", "adjust", c, "-0.51", "--reason", "mistaken top-up")
    assert "0.50 available" in message
    assert snapshot(url) == before

    done = ok_json("customer", "adjust", c, "-0.50", "--reason", "mistaken top-up")
    assert done == {
        "id": customer_id,
        "adjustment": "-0.50",
        "balance": "0.50",
        "available": "0.00",
        "reason": "mistaken top-up",
    }
    result = ok("customer", "adjust", c, "2.50", "--reason", "goodwill")
    assert result.stdout == "" and "balance 3.00, available 2.50" in result.stderr
    assert balance_of_customer(url, customer_id) == 300
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:2.50"
    rows = sql(
        url,
        "SELECT d.kind, c.kind, j.amount, j.note FROM journal j "
        "JOIN accounts d ON d.id = j.debit_account_id "
        "JOIN accounts c ON c.id = j.credit_account_id "
        "WHERE j.kind = 'adjustment' ORDER BY j.id",
    )
    assert rows == [
        ("customer", "external", 50, "mistaken top-up"),
        ("external", "customer", 250, "goodwill"),
    ]


def test_ban_refuses_zero_days_and_prints_its_end(url: str, world: dict[str, int]) -> None:
    c = str(world["c"])
    before = snapshot(url)
    assert "--days" in refused("customer", "ban", c, "--days", "0")
    assert "--days" in refused("customer", "ban", c, "--days=-1")
    assert snapshot(url) == before
    result = ok("customer", "ban", c, "--days", "2")
    assert result.stdout == ""
    assert f"customer {c}: banned until 20" in result.stderr and "UTC" in result.stderr
    banned = ok_json("customer", "ban", c, "--days", "2")
    (stored,) = sql(url, "SELECT banned_until FROM customers WHERE id = :c", c=world["c"])
    assert banned == {"id": world["c"], "banned_until": stored[0]}
    ok("customer", "unban", c)
    assert ok_json("customer", "show", c)["banned_until"] is None


def test_limits_without_options_print_them(url: str, world: dict[str, int]) -> None:
    c = str(world["c"])
    before = snapshot(url)
    shown = ok("customer", "limits", c)
    assert shown.stdout == ""
    assert "rate limit 300 (default), max live no cap (default)" in shown.stderr
    assert ok_json("customer", "limits", c) == {
        "id": world["c"],
        "rate_limit": None,
        "max_live": None,
    }
    assert snapshot(url) == before
    changed = ok_json("customer", "limits", c, "--rate-limit", "50", "--max-live", "20")
    assert changed == {"id": world["c"], "rate_limit": 50, "max_live": 20}
    assert "rate limit unlimited (own)" in ok("customer", "limits", c, "--rate-limit", "0").stderr


# ---------------------------------------------------------------- finding ids


def test_catalog(url: str) -> None:
    assert ok_json("catalog", "countries", "--search", "kazakh") == {
        "countries": [{"id": 2, "name": "Kazakhstan (KZ, +7)"}]
    }
    assert ok_json("catalog", "countries", "--search", "16")["countries"][0]["id"] == 16
    services = ok_json("catalog", "services", "--search", "telegram")["services"]
    assert {"id": "tg", "name": "Telegram"} in services
    assert ok_json("catalog", "services", "--search", "tg")["services"][0]["id"] == "tg"
    assert ok_json("catalog", "services", "--search", "no such service")["services"] == []
    assert len(ok_json("catalog", "countries")["countries"]) == 200
    human = ok("catalog", "services", "--search", "whatsapp").stdout
    assert human.splitlines()[1].split() == ["wa", "Whatsapp"]


# ---------------------------------------------------------------- bad input changes nothing

BAD_INPUT: list[tuple[str, tuple[str, ...], str]] = [
    ("customer-show-unknown", ("customer", "show", "{missing}"), "customer"),
    ("customer-list-limit", ("customer", "list", "--limit", "0"), "limit"),
    ("provider-show-unknown", ("provider", "show", "{missing}"), "provider"),
    ("offer-list-unknown-service", ("offer", "list", "--service", "nosuchsvc"), "service"),
    ("offer-list-unknown-country", ("offer", "list", "--country", "9999"), "country"),
    ("offer-disable-unknown", ("offer", "disable", "{missing}"), "offer"),
    ("offer-enable-unknown", ("offer", "enable", "{missing}"), "offer"),
    ("number-list-status", ("number", "list", "--status", "sold"), "status"),
    ("number-list-phone", ("number", "list", "--phone", "+7"), "phone"),
    ("number-disable-unknown", ("number", "disable", "{missing}"), "number"),
    ("number-enable-unknown", ("number", "enable", "{missing}"), "number"),
    ("number-remove-unknown", ("number", "remove", "{missing}"), "number"),
    ("activation-list-state", ("activation", "list", "--state", "done"), "state"),
    ("activation-list-since", ("activation", "list", "--since", "yesterday"), "since"),
    ("activation-list-order", ("activation", "list", "--since", "20", "--until", "10"), "until"),
    ("activation-list-limit", ("activation", "list", "--limit", "1001"), "limit"),
    ("activation-show-unknown", ("activation", "show", "{missing}"), "activation"),
    ("refund-unknown", ("activation", "refund", "{missing}", "--reason", "x"), "activation"),
    ("refund-blank-reason", ("activation", "refund", "{missing}", "--reason", " "), "reason"),
    ("sms-since", ("sms", "unmatched", "--since", "now"), "since"),
    ("adjust-unknown", ("customer", "adjust", "{missing}", "1.00", "--reason", "x"), "customer"),
    ("adjust-zero", ("customer", "adjust", "{c}", "0", "--reason", "x"), "zero"),
    ("adjust-overdraw", ("customer", "adjust", "{c}", "-10.01", "--reason", "x"), "below zero"),
    ("adjust-blank-reason", ("customer", "adjust", "{c}", "1.00", "--reason", " "), "reason"),
    ("adjust-decimals", ("customer", "adjust", "{c}", "1.001", "--reason", "x"), "decimals"),
    ("adjust-malformed", ("customer", "adjust", "{c}", "5,00", "--reason", "x"), "5,00"),
    ("ban-zero", ("customer", "ban", "{c}", "--days", "0"), "days"),
    ("ban-negative", ("customer", "ban", "{c}", "--days=-1"), "days"),
    ("ban-too-long", ("customer", "ban", "{c}", "--days", "36501"), "days"),
    ("ban-unknown", ("customer", "ban", "{missing}", "--days", "1"), "customer"),
    ("limits-unknown", ("customer", "limits", "{missing}"), "customer"),
    ("limits-negative", ("customer", "limits", "{c}", "--rate-limit=-1"), "limits"),
]


@pytest.mark.parametrize(
    ("args", "word"), [pytest.param(a, w, id=case) for case, a, w in BAD_INPUT]
)
def test_bad_input_is_refused_and_changes_nothing(
    url: str, world: dict[str, int], args: tuple[str, ...], word: str
) -> None:
    argv = [a.format(**world) for a in args]
    before = snapshot(url)
    message = refused(*argv)
    assert message.startswith("error:"), message
    assert word.lower() in message.lower(), message
    refused(*argv, "--json")
    assert snapshot(url) == before


def test_every_new_command_has_help(url: str) -> None:
    for group, command in [
        ("customer", "list"),
        ("customer", "show"),
        ("customer", "adjust"),
        ("provider", "list"),
        ("provider", "show"),
        ("offer", "list"),
        ("offer", "disable"),
        ("offer", "enable"),
        ("number", "list"),
        ("number", "disable"),
        ("number", "enable"),
        ("number", "remove"),
        ("activation", "list"),
        ("activation", "show"),
        ("activation", "refund"),
        ("sms", "unmatched"),
        ("catalog", "countries"),
        ("catalog", "services"),
    ]:
        result = cli(group, command, "--help")
        assert result.exit_code == 0 and "--json" in result.stdout, (group, command)


def test_json_shapes(hub: Hub, url: str) -> None:
    """The fields scripts may rely on, for every list and show."""
    seller = hub.stocked(count=2)
    customer_id, key = hub.customer_id()
    activation_id, _ = finished(hub, seller, key)
    hub.push_sms(seller, "79000000002", "nobody waits")
    offer_fields = {"id", "provider", "service", "country", "price", "payout", "margin", "ttl"}
    offer_fields |= {"enabled"}
    number_fields = {"id", "provider", "country", "operator", "phone", "online", "in_use"}
    number_fields |= {"created_at"}
    activation_fields = {"id", "customer", "provider", "number", "service", "country"}
    activation_fields |= {"operator", "phone", "price", "payout", "state", "refunded", "code"}
    activation_fields |= {"created_at", "expires_at", "ended_at"}
    provider_fields = {"id", "name", "enabled", "payable", "delivery_score", "numbers"}
    provider_fields |= {"numbers_online", "offers", "finished", "refunded", "sms"}
    provider_fields |= {"sms_without_code", "sms_unmatched", "created_at"}
    # Issue 9: how a remote provider is reached and its health.
    provider_fields |= {"kind", "endpoint", "up", "down_since", "last_error", "polled_at"}
    # Issue 9: an upstream's balance there and markup (null for the other kinds).
    provider_fields |= {"upstream"}
    customer_fields = {"id", "name", "balance", "held", "available", "rate_limit", "max_live"}
    customer_fields |= {"banned_until", "active_keys", "created_at"}
    # Issue 10: the customer's dialect and referral code.
    customer_fields |= {"dialect", "referral_code"}
    key_fields = {"id", "hint", "created_at", "revoked_at"}

    def rows(*args: str) -> list[dict[str, Any]]:
        payload = ok_json(*args)
        assert len(payload) == 1, payload
        (found,) = payload.values()
        assert isinstance(found, list) and found, payload
        return found

    assert all(set(r) == customer_fields for r in rows("customer", "list"))
    assert all(set(r) == provider_fields for r in rows("provider", "list"))
    assert all(set(r) == offer_fields for r in rows("offer", "list"))
    assert all(set(r) == number_fields for r in rows("number", "list"))
    assert all(set(r) == activation_fields for r in rows("activation", "list"))
    assert all(
        set(r) == {"id", "provider", "sms_id", "phone", "phone_from", "text", "received_at"}
        for r in rows("sms", "unmatched")
    )
    assert all(set(r) == {"id", "name"} for r in rows("catalog", "services"))
    customer = ok_json("customer", "show", str(customer_id))
    assert set(customer) == customer_fields | {"keys"}
    assert all(set(k) == key_fields for k in customer["keys"])
    provider = ok_json("provider", "show", str(seller.id))
    assert set(provider) == provider_fields | {"keys"}
    assert all(set(k) == key_fields for k in provider["keys"])
    shown = ok_json("activation", "show", str(activation_id))
    assert set(shown) == activation_fields | {"refund_reason", "sms", "journal"}
    assert all(set(m) == {"id", "received_at", "phone_from", "text", "code"} for m in shown["sms"])
    journal_fields = {"id", "kind", "debit", "credit", "amount", "resolves", "created_at", "note"}
    assert all(set(j) == journal_fields for j in shown["journal"])
    assert set(ok_json("offer", "disable", str(rows("offer", "list")[0]["id"]))) == offer_fields
    assert set(ok_json("number", "enable", str(rows("number", "list")[0]["id"]))) == number_fields
