"""The database itself refuses what must never happen, whatever the code above does."""

from __future__ import annotations

import pytest
from sqlalchemy import Executable, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from otphub.db.schema import accounts, activations, journal
from tests.support import Hub


def execute(hub: Hub, statement: Executable) -> None:
    async def run() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(statement)

    hub.call(run())


def copy_activation(hub: Hub, activation_id: int) -> None:
    """Insert a second activation exactly like this one (same number, service, state)."""

    async def copy() -> None:
        async with hub.rt.db.write() as conn:
            row = (
                await conn.execute(select(activations).where(activations.c.id == activation_id))
            ).one()
            values = {k: v for k, v in row._mapping.items() if k != "id"}
            values["order_id"] = "another"
            await conn.execute(insert(activations).values(**values))

    hub.call(copy())


def bought_and_finished(hub: Hub) -> int:
    seller = hub.stocked(count=2)
    key = hub.customer("5.00")
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "code 12345")
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    return activation_id


def test_the_journal_refuses_update(hub: Hub) -> None:
    bought_and_finished(hub)
    with pytest.raises(DBAPIError, match="append-only"):
        execute(hub, update(journal).values(amount=1))
    hub.assert_audit_clean()


def test_the_journal_refuses_delete(hub: Hub) -> None:
    bought_and_finished(hub)
    with pytest.raises(DBAPIError, match="append-only"):
        execute(hub, text("DELETE FROM journal"))
    hub.assert_audit_clean()


def test_a_hold_cannot_be_resolved_twice(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)

    async def second_resolution() -> None:
        async with hub.rt.db.write() as conn:
            hold = (
                await conn.execute(
                    select(journal).where(
                        journal.c.activation_id == activation_id, journal.c.kind == "hold"
                    )
                )
            ).one()
            await conn.execute(
                insert(journal).values(
                    kind="release",
                    debit_account_id=hold.debit_account_id,
                    credit_account_id=hold.credit_account_id,
                    amount=hold.amount,
                    resolves_id=hold.id,
                    activation_id=activation_id,
                    created_at=0,
                )
            )

    with pytest.raises(IntegrityError):
        hub.call(second_resolution())


def test_amounts_are_positive_and_accounts_distinct(hub: Hub) -> None:
    hub.customer("1.00")
    for amount, debit, credit in [(0, 1, 2), (-5, 1, 2), (5, 2, 2)]:
        with pytest.raises(IntegrityError):
            execute(
                hub,
                insert(journal).values(
                    kind="topup",
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=amount,
                    created_at=0,
                ),
            )


def test_a_wallet_cannot_be_overdrawn(hub: Hub) -> None:
    hub.customer("1.00")
    with pytest.raises(IntegrityError):
        execute(
            hub,
            update(accounts).where(accounts.c.kind == "customer").values(held=101),
        )


def test_a_number_has_at_most_one_live_activation(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("5.00")
    activation_id, _ = hub.buy(key)

    with pytest.raises(IntegrityError):
        copy_activation(hub, activation_id)


def test_a_number_is_finished_at_most_once_per_service(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)

    with pytest.raises(IntegrityError):
        copy_activation(hub, activation_id)


@pytest.mark.corrupts_ledger
@pytest.mark.parametrize(
    ("corruption", "problem"),
    [
        (
            "UPDATE accounts SET balance = balance + 1 WHERE kind = 'customer'",
            "account balance differs",
        ),
        ("UPDATE accounts SET held = held + 1 WHERE kind = 'customer'", "held amount differs"),
        ("UPDATE activations SET state = 'cancelled'", "hold resolution does not match"),
        ("UPDATE activations SET price = price + 1", "hold amount differs"),
        ("UPDATE activations SET payout = payout - 1", "provider share differs"),
        ("UPDATE numbers SET in_use = NOT in_use", "number busy flag differs"),
    ],
)
def test_the_audit_names_what_is_wrong(hub: Hub, corruption: str, problem: str) -> None:
    bought_and_finished(hub)
    hub.assert_audit_clean()
    execute(hub, text(corruption))
    report = hub.audit()
    assert not report.clean
    assert any(problem in p for p in report.problems), report.problems
