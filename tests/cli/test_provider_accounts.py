"""Provider accounts (issue 9, section 3): ``provider stats``, ``provider payout`` and
``provider statement``, on SQLite and PostgreSQL.

A live deployment (``hub``, with its manual clock) makes the sales; the commands run on the
same database (``url``). The ``hub`` fixture audits the ledger after each test, so every
payout here is also checked against the journal (and the audit's payout rules).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update

from otphub.db import ledger
from otphub.db.engine import Conn
from otphub.db.schema import accounts, journal, providers, remote_stock
from otphub.domain import errors
from otphub.services import accounts as accounts_service
from otphub.services import disputes, provider_accounts
from tests import support
from tests.cli.test_cli import cli, ok, ok_json, refused, snapshot
from tests.support import Hub, Seller

# 2026-06-01 00:00:00 UTC: the days of these tests start here.
JUNE_1 = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
DAY = 86400


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"early_cancel": 0}


def sale(hub: Hub, seller: Seller, key: str, *, sms_after: int = 10) -> int:
    """Buy, receive a code ``sms_after`` seconds later, finish: the provider earns."""
    activation_id, phone = hub.buy(key, providerIds=seller.id)
    hub.clock.advance(sms_after)
    assert hub.push_sms(seller, phone, "code 12345").status_code == 200
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    return activation_id


def at(hub: Hub, moment: int) -> None:
    assert moment >= hub.clock.now()
    hub.clock.advance(moment - hub.clock.now())


def pay(hub: Hub, seller: Seller, amount: int, note: str | None = None) -> Any:
    return hub.call(
        provider_accounts.pay_out(hub.rt, provider_id=seller.id, amount=amount, note=note)
    )


def payable_shown(seller: Seller) -> str:
    return str(ok_json("provider", "show", str(seller.id))["payable"])


# ---------------------------------------------------------------- payout


def test_payout_never_more_than_is_owed(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=5, payout="0.40")
    key = hub.customer("10.00")
    for _ in range(3):
        sale(hub, seller, key)
    assert payable_shown(seller) == "1.20"

    done = ok_json("provider", "payout", str(seller.id), "0.50", "--note", "bank transfer 17")
    assert done["id"] == seller.id and done["paid"] == "0.50" and done["payable"] == "0.70"
    assert done["note"] == "bank transfer 17" and isinstance(done["journal_id"], int)
    assert payable_shown(seller) == "0.70"

    before = snapshot(url)
    message = refused("provider", "payout", str(seller.id), "0.71")
    assert "is owed 0.70" in message and "0.71" in message, message
    for bad in ("0", "0.00", "-1.00", "0.001", "abc"):
        refused("provider", "payout", str(seller.id), bad, "--json")
    refused("provider", "payout", "999999", "0.10")
    refused("provider", "payout", str(seller.id), "0.10", "--note", " ")
    assert snapshot(url) == before

    human = ok("provider", "payout", str(seller.id), "0.70")
    assert human.stdout == ""
    assert f"provider {seller.id}: paid out 0.70; still owed 0.00" in human.stderr
    refused("provider", "payout", str(seller.id), "0.01")
    assert payable_shown(seller) == "0.00"


def test_two_payouts_at_once_never_overdraw(hub: Hub) -> None:
    """The check and the posting are one statement: of five payouts of 0.50 racing for a
    payable of 1.20, exactly two pass, on both databases."""
    seller = hub.stocked(count=5, payout="0.40")
    key = hub.customer("10.00")
    for _ in range(3):
        sale(hub, seller, key)

    async def race() -> list[Any]:
        return await asyncio.gather(
            *(
                provider_accounts.pay_out(hub.rt, provider_id=seller.id, amount=50, note=None)
                for _ in range(5)
            ),
            return_exceptions=True,
        )

    outcomes = hub.call(race())
    paid = [o for o in outcomes if isinstance(o, provider_accounts.Payout)]
    refused_ = [o for o in outcomes if isinstance(o, errors.InvalidAmount)]
    assert len(paid) == 2 and len(refused_) == 3, outcomes
    assert hub.call(accounts_service.provider_balance(hub.rt, seller.id)) == 20
    hub.assert_audit_clean()


async def naive_pay_out(
    conn: Conn,
    *,
    system: ledger.SystemAccounts,
    account_id: int,
    amount: int,
    note: str | None,
    now: int,
) -> int | None:
    """The textbook overdraft: read the payable, then take the payout off it without
    checking again (a second payout reads the same payable meanwhile)."""
    balance = (
        await conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id))
    ).scalar_one()
    if balance < amount:
        return None
    await asyncio.sleep(0.01)
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(balance=accounts.c.balance - amount)
    )
    found = await conn.execute(
        insert(journal)
        .values(
            kind="payout",
            debit_account_id=account_id,
            credit_account_id=system.external,
            amount=amount,
            created_at=now,
            note=note,
        )
        .returning(journal.c.id)
    )
    return int(found.scalar_one())


def test_the_race_test_catches_a_naive_payout(
    live_server: support.LiveServer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control, on PostgreSQL (SQLite runs one write transaction at a time, so a
    naive payout cannot race there): with a read-then-write payout the same race
    overdraws, and the audit names it."""
    asyncio.run(support.empty_pg(pg_url))
    hub = support.install(live_server, pg_url, "postgresql", early_cancel=0)
    try:
        seller = hub.stocked(count=5, payout="0.40")
        key = hub.customer("10.00")
        for _ in range(3):
            sale(hub, seller, key)
        monkeypatch.setattr(ledger, "pay_out", naive_pay_out)

        async def race() -> list[Any]:
            return await asyncio.gather(
                *(
                    provider_accounts.pay_out(hub.rt, provider_id=seller.id, amount=50, note=None)
                    for _ in range(5)
                ),
                return_exceptions=True,
            )

        paid = [o for o in hub.call(race()) if isinstance(o, provider_accounts.Payout)]
        assert len(paid) > 2
        problems = hub.audit().problems
        assert any(p.startswith("payout beyond what the provider was owed") for p in problems)
    finally:
        support.uninstall(hub)


@pytest.mark.corrupts_ledger
def test_the_audit_names_a_payout_beyond_the_payable(hub: Hub) -> None:
    seller = hub.stocked(count=1, payout="0.40")
    sale(hub, seller, hub.customer())

    async def overpay() -> None:
        # Rows written past ledger.pay_out: a payout of 0.50 against a payable of 0.40.
        async with hub.rt.db.write() as conn:
            account_id = (
                await conn.execute(
                    select(providers.c.account_id).where(providers.c.id == seller.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(journal).values(
                    kind="payout",
                    debit_account_id=account_id,
                    credit_account_id=hub.rt.accounts().external,
                    amount=50,
                    created_at=hub.clock.now(),
                )
            )
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(balance=accounts.c.balance - 50)
            )

    hub.call(overpay())
    problems = hub.audit().problems
    assert any(p.startswith("payout beyond what the provider was owed") for p in problems), problems


@pytest.mark.corrupts_ledger
def test_the_audit_names_a_payout_from_another_kind_of_account(hub: Hub) -> None:
    customer_id, _ = hub.customer_id("1.00")

    async def misdirect() -> None:
        async with hub.rt.db.write() as conn:
            wallet = (
                await conn.execute(
                    select(accounts.c.id).where(accounts.c.kind == "customer").limit(1)
                )
            ).scalar_one()
            await conn.execute(
                insert(journal).values(
                    kind="payout",
                    debit_account_id=wallet,
                    credit_account_id=hub.rt.accounts().external,
                    amount=10,
                    created_at=hub.clock.now(),
                )
            )

    hub.call(misdirect())
    problems = hub.audit().problems
    assert any(p.startswith("payout not from a provider to the outside") for p in problems), (
        problems
    )
    assert customer_id


def test_a_refund_after_a_payout_still_audits_clean(hub: Hub) -> None:
    """A payout takes what was owed then; a later refund may take the payable below zero
    (the provider owes the operator), which is not a payout beyond what was owed."""
    seller = hub.stocked(count=2, payout="0.40")
    key = hub.customer("10.00")
    first = sale(hub, seller, key)
    pay(hub, seller, 40)
    hub.call(disputes.refund_activation(hub.rt, activation_id=first, reason="complaint"))
    assert hub.call(accounts_service.provider_balance(hub.rt, seller.id)) == -40
    hub.assert_audit_clean()


# ---------------------------------------------------------------- statement


def history(hub: Hub) -> tuple[Seller, list[int]]:
    """June 1: two sales; June 2: a refund of the first and a payout; June 3: a sale."""
    seller = hub.stocked(count=5, payout="0.40")
    key = hub.customer("10.00")
    at(hub, JUNE_1 + 10 * 3600)
    first = sale(hub, seller, key)
    second = sale(hub, seller, key)
    at(hub, JUNE_1 + DAY + 9 * 3600)
    hub.call(disputes.refund_activation(hub.rt, activation_id=first, reason="complaint"))
    pay(hub, seller, 30, "june")
    at(hub, JUNE_1 + 2 * DAY + 12 * 3600)
    third = sale(hub, seller, key)
    return seller, [first, second, third]


def test_statement_lists_every_movement_with_a_running_balance(hub: Hub, url: str) -> None:
    seller, (first, second, third) = history(hub)
    found = ok_json("provider", "statement", str(seller.id))
    assert found["opening"] == "0.00"
    assert [
        (m["kind"], m["activation"], m["amount"], m["balance"], m["note"])
        for m in found["movements"]
    ] == [
        ("share", first, "0.40", "0.40", None),
        ("share", second, "0.40", "0.80", None),
        ("clawback", first, "-0.40", "0.40", None),
        ("payout", None, "-0.30", "0.10", "june"),
        ("share", third, "0.40", "0.50", None),
    ]
    times = [m["created_at"] for m in found["movements"]]
    assert times == sorted(times)
    # The last running balance is the ledger's payable.
    assert found["closing"] == "0.50" == payable_shown(seller)

    # From June 2: the balance before it opens the statement.
    later = ok_json("provider", "statement", str(seller.id), "--from", "2026-06-02")
    assert later["opening"] == "0.80"
    assert [m["kind"] for m in later["movements"]] == ["clawback", "payout", "share"]
    assert later["closing"] == payable_shown(seller)
    # Up to and including June 2: the payable at the end of that day.
    until = ok_json("provider", "statement", str(seller.id), "--to", "2026-06-02")
    assert [m["kind"] for m in until["movements"]] == ["share", "share", "clawback", "payout"]
    assert until["closing"] == "0.10"
    one_day = ok_json(
        "provider", "statement", str(seller.id), "--from", "2026-06-02", "--to", "2026-06-02"
    )
    assert (one_day["opening"], one_day["closing"]) == ("0.80", "0.10")
    assert (
        ok_json("provider", "statement", str(seller.id), "--from", "2026-06-04")["movements"] == []
    )

    human = ok("provider", "statement", str(seller.id)).stdout
    assert "opening balance 0.00" in human and "closing balance 0.50" in human
    assert "payout" in human and "june" in human

    before = snapshot(url)
    for args in (
        ("--from", "2026-13-01"),
        ("--to", "yesterday"),
        ("--from", "2026-06-03", "--to", "2026-06-02"),
    ):
        refused("provider", "statement", str(seller.id), *args)
    refused("provider", "statement", "999999")
    assert snapshot(url) == before


def test_statement_days_are_in_the_deployment_time_zone(
    hub: Hub, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sale at 2026-06-01 23:30 in New York is 2026-06-02 03:30 UTC: it belongs to June 1
    there, and ``--to`` includes the whole of that day."""
    monkeypatch.setenv("OTPHUB_TIME_ZONE", "America/New_York")
    seller = hub.stocked(count=2, payout="0.40")
    key = hub.customer("10.00")
    local = datetime(2026, 6, 1, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    at(hub, int(local.timestamp()))
    sale(hub, seller, key, sms_after=5)
    june_1 = ok_json("provider", "statement", str(seller.id), "--to", "2026-06-01")
    assert [m["kind"] for m in june_1["movements"]] == ["share"]
    june_2 = ok_json("provider", "statement", str(seller.id), "--from", "2026-06-02")
    assert (june_2["opening"], june_2["movements"]) == ("0.40", [])


# ---------------------------------------------------------------- stats


def test_stats(hub: Hub, url: str) -> None:
    seller = hub.stocked(count=6, payout="0.40", price="0.50")
    hub.offer(seller, service="wa", price="0.30", payout="0.20")
    key = hub.customer("10.00")
    at(hub, JUNE_1 + 10 * 3600)
    first = sale(hub, seller, key, sms_after=10)
    sale(hub, seller, key, sms_after=30)
    sale(hub, seller, key, sms_after=20)
    activation_id, _ = hub.buy(key, providerIds=seller.id)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    # An SMS without a code, to a free number (kept unmatched).
    assert hub.push_sms(seller, "79000000006", "hello there").status_code == 200
    hub.call(disputes.refund_activation(hub.rt, activation_id=first, reason="complaint"))
    at(hub, JUNE_1 + DAY + 3600)
    pay(hub, seller, 25)
    live, _ = hub.buy(key, service="wa", providerIds=seller.id)  # busy: out of the stock

    found = ok_json("provider", "stats", str(seller.id))
    assert found["stock"] == [
        {"service": "tg", "country": 0, "count": 3, "price": "0.50", "remote": False},
        {"service": "wa", "country": 0, "count": 5, "price": "0.30", "remote": False},
    ]
    assert {k: v for k, v in found.items() if k != "stock"} == {
        "id": seller.id,
        "since": None,
        "until": None,
        "sales": 3,
        "cancelled": 1,
        "success_rate": 0.75,
        "median_sms_seconds": 20,
        "refunds": 1,
        "refunded": "0.50",
        "clawed_back": "0.40",
        "sms": 4,
        "sms_without_code": 1,
        "earned": "0.80",
        "payouts": "0.25",
        "payable": "0.55",
    }
    assert found["payable"] == payable_shown(seller)
    # June 2 alone: only the payout (and the live activation, not ended).
    june_2 = ok_json("provider", "stats", str(seller.id), "--from", "2026-06-02")
    assert june_2["since"] == JUNE_1 + DAY and june_2["until"] is None
    assert (june_2["sales"], june_2["success_rate"], june_2["median_sms_seconds"]) == (
        0,
        None,
        None,
    )
    assert (june_2["payouts"], june_2["earned"], june_2["refunds"]) == ("0.25", "0.00", 0)
    human = ok("provider", "stats", str(seller.id)).stdout
    assert "success rate 75.0%" in human and "median time to the first SMS 20 s" in human
    assert "payable now 0.55" in human
    hub.say(key, "setStatus", id=live, status=8)


def test_stats_show_a_remote_providers_polled_stock(hub: Hub, url: str) -> None:
    created = hub.call(
        accounts_service.add_provider(
            hub.rt, name="Agent rack", agent_url="http://127.0.0.1:9/agent"
        )
    )
    hub.offer(Seller(created.id, created.key), service="tg", price="0.70")

    async def polled() -> None:
        async with hub.rt.db.write() as conn:
            for operator, service, count in (
                ("beeline", "tg", 3),
                ("mts", "tg", 4),
                ("mts", "wa", 2),
            ):
                await conn.execute(
                    insert(remote_stock).values(
                        provider_id=created.id,
                        country_id=0,
                        operator=operator,
                        service=service,
                        count=count,
                        polled_at=hub.clock.now(),
                    )
                )

    hub.call(polled())
    found = ok_json("provider", "stats", str(created.id))
    assert found["stock"] == [
        {"service": "tg", "country": 0, "count": 7, "price": "0.70", "remote": True},
        # Polled, but no offer for it: stock without a price.
        {"service": "wa", "country": 0, "count": 2, "price": None, "remote": True},
    ]
    assert found["sales"] == 0 and found["payable"] == "0.00"


def test_the_commands_have_help(url: str) -> None:
    for command in ("stats", "payout", "statement"):
        result = cli("provider", command, "--help")
        assert result.exit_code == 0 and "--json" in result.stdout, command
