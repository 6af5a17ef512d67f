"""Refunds in the database: one per activation (the unique ``resolves_id``, as for holds),
the migration that allows them keeps the journal and its guards, and the auditor checks
every refund, clawback and adjustment."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from otphub.db.engine import open_database
from otphub.db.migrate import alembic_config
from otphub.db.schema import journal, providers
from otphub.domain import errors
from otphub.services import disputes, operator
from tests import support
from tests.db.test_constraints import bought_and_finished
from tests.support import Hub

# ---------------------------------------------------------------- the constraint


def journal_row(hub: Hub, activation_id: int, kind: str) -> Any:
    async def read() -> Any:
        async with hub.rt.db.read() as conn:
            return (
                await conn.execute(
                    select(journal).where(
                        journal.c.activation_id == activation_id, journal.c.kind == kind
                    )
                )
            ).one()

    return hub.call(read())


def insert_rows(hub: Hub, *rows: dict[str, Any]) -> None:
    async def write() -> None:
        async with hub.rt.db.write() as conn:
            for row in rows:
                await conn.execute(insert(journal).values(created_at=0, **row))

    hub.call(write())


def refund_of(capture: Any, **changes: Any) -> dict[str, Any]:
    """The refund row that reverses ``capture`` (revenue -> customer)."""
    row = {
        "kind": "refund",
        "debit_account_id": capture.credit_account_id,
        "credit_account_id": capture.debit_account_id,
        "amount": capture.amount,
        "resolves_id": capture.id,
        "activation_id": capture.activation_id,
    }
    return row | changes


def test_an_activation_cannot_be_refunded_twice(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)
    capture = journal_row(hub, activation_id, "capture")
    # The first refund row is accepted (the schema knows the kind)...
    hub.call(disputes.refund_activation(hub.rt, activation_id=activation_id, reason="first"))
    # ...and a second one, written past the service's own check, is refused by the database.
    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        insert_rows(hub, refund_of(capture))
    hub.assert_audit_clean()


def test_a_refund_names_the_capture_it_reverses(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)
    capture = journal_row(hub, activation_id, "capture")
    with pytest.raises(IntegrityError):
        insert_rows(hub, refund_of(capture, resolves_id=None))
    hub.assert_audit_clean()


def test_two_refunds_at_once_refund_once(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)

    async def both() -> list[Any]:
        return await asyncio.gather(
            *(
                disputes.refund_activation(hub.rt, activation_id=activation_id, reason=f"r{i}")
                for i in range(2)
            ),
            return_exceptions=True,
        )

    outcomes = hub.call(both())
    refunded = [o for o in outcomes if isinstance(o, disputes.Refund)]
    refused = [o for o in outcomes if isinstance(o, errors.InvalidInput)]
    assert len(refunded) == 1 and len(refused) == 1, outcomes
    assert "refunded already" in str(refused[0])
    hub.assert_audit_clean()


def test_two_corrections_racing_for_the_last_money_pass_once(hub: Hub) -> None:
    """The available-balance check and the posting are one statement (as for holds)."""
    customer_id, _ = hub.customer_id("1.00")

    async def both() -> list[Any]:
        return await asyncio.gather(
            *(
                operator.adjust(hub.rt, customer_id=customer_id, delta=-80, reason=f"r{i}")
                for i in range(4)
            ),
            return_exceptions=True,
        )

    outcomes = hub.call(both())
    passed = [o for o in outcomes if isinstance(o, operator.Adjustment)]
    refused = [o for o in outcomes if isinstance(o, errors.InvalidAmount)]
    assert len(passed) == 1 and len(refused) == 3, outcomes
    assert passed[0].available == 20
    hub.assert_audit_clean()


# ---------------------------------------------------------------- the auditor


@pytest.mark.corrupts_ledger
def test_the_audit_names_a_refund_that_differs_from_its_capture(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)
    capture = journal_row(hub, activation_id, "capture")
    insert_rows(hub, refund_of(capture, amount=capture.amount - 1))
    problems = hub.audit().problems
    assert any(p.startswith("refund does not match its capture") for p in problems), problems


@pytest.mark.corrupts_ledger
def test_the_audit_names_a_refund_without_its_clawback(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)
    capture = journal_row(hub, activation_id, "capture")
    insert_rows(hub, refund_of(capture))
    problems = hub.audit().problems
    assert any(p.startswith("clawback differs from the refunded shares") for p in problems), (
        problems
    )


@pytest.mark.corrupts_ledger
def test_the_audit_names_a_clawback_from_another_account(hub: Hub) -> None:
    activation_id = bought_and_finished(hub)
    capture = journal_row(hub, activation_id, "capture")
    share = journal_row(hub, activation_id, "share")
    wrong = {
        "kind": "clawback",
        "debit_account_id": capture.debit_account_id,  # the customer, not the provider
        "credit_account_id": share.debit_account_id,
        "amount": share.amount,
        "activation_id": activation_id,
    }
    insert_rows(hub, refund_of(capture), wrong)
    problems = hub.audit().problems
    assert any(p.startswith("clawback not taken from the activation's provider") for p in problems)


@pytest.mark.corrupts_ledger
def test_the_audit_names_an_adjustment_of_a_provider(hub: Hub) -> None:
    seller = hub.provider()

    async def provider_account() -> int:
        async with hub.rt.db.read() as conn:
            found = await conn.execute(
                select(providers.c.account_id).where(providers.c.id == seller.id)
            )
            return int(found.scalar_one())

    account_id = hub.call(provider_account())
    row = {
        "kind": "adjustment",
        "debit_account_id": hub.rt.accounts().external,
        "credit_account_id": account_id,
        "amount": 5,
    }
    insert_rows(hub, row)
    problems = hub.audit().problems
    assert any(p.startswith("adjustment not between a wallet and the outside") for p in problems)


# ---------------------------------------------------------------- the migration


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, to migrate step by step."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'steps.db'}"
        return
    if not support.pg_reachable():
        pytest.skip("PostgreSQL unreachable")
    url = support.create_pg_database()
    try:
        yield url
    finally:
        support.drop_pg_database(url)


async def _migrate_to(url: str, revision: str) -> None:
    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    db = open_database(url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.run_sync(upgrade)
    finally:
        await db.dispose()


async def _statements(url: str, *statements: Any) -> list[list[tuple[Any, ...]]]:
    db = open_database(url, pool_size=1)
    try:
        async with db.write() as conn:
            out = []
            for statement in statements:
                result = await conn.execute(statement)
                out.append([tuple(r) for r in result.all()] if result.returns_rows else [])
            return out
    finally:
        await db.dispose()


def run_statements(url: str, *statements: Any) -> list[list[tuple[Any, ...]]]:
    return asyncio.run(_statements(url, *statements))


def test_migration_0004_keeps_the_journal_and_its_guards(empty_url: str) -> None:
    asyncio.run(_migrate_to(empty_url, "0003"))
    # A finished purchase as 0003 stored it: accounts 1 wallet, 2 revenue, 3 external,
    # 4 provider; a top-up, a hold, its capture and the provider's share.
    run_statements(
        empty_url,
        text(
            "INSERT INTO accounts (id, kind, balance, held) VALUES "
            "(1, 'customer', 450, 0), (2, 'revenue', 0, 0), (3, 'external', 0, 0), "
            "(4, 'provider', 40, 0)"
        ),
        text(
            "INSERT INTO journal (id, kind, debit_account_id, credit_account_id, amount, "
            "resolves_id, activation_id, created_at) VALUES "
            "(1, 'topup', 3, 1, 500, NULL, NULL, 1), (2, 'hold', 1, 2, 50, NULL, 7, 2), "
            "(3, 'capture', 1, 2, 50, 2, 7, 3), (4, 'share', 2, 4, 40, NULL, 7, 3)"
        ),
    )
    everything = select(journal).order_by(journal.c.id)
    (before,) = run_statements(empty_url, everything)

    asyncio.run(_migrate_to(empty_url, "head"))

    (after,) = run_statements(empty_url, everything)
    assert after == before
    with pytest.raises(DBAPIError, match="append-only"):
        run_statements(empty_url, update(journal).values(amount=1))
    with pytest.raises(DBAPIError, match="append-only"):
        run_statements(empty_url, text("DELETE FROM journal"))

    # Explicit ids: PostgreSQL's identity did not count the rows inserted with theirs.
    def refund(row_id: int) -> Any:
        return text(
            "INSERT INTO journal (id, kind, debit_account_id, credit_account_id, amount, "
            f"resolves_id, activation_id, created_at) VALUES ({row_id}, 'refund', 2, 1, 50, 3, "
            "7, 4)"
        )

    run_statements(empty_url, refund(5))
    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        run_statements(empty_url, refund(6))
    # The self-reference survived the rebuild: a refund of a row that does not exist fails.
    with pytest.raises(IntegrityError):
        run_statements(
            empty_url,
            text(
                "INSERT INTO journal (id, kind, debit_account_id, credit_account_id, amount, "
                "resolves_id, created_at) VALUES (7, 'refund', 2, 1, 50, 999, 4)"
            ),
        )
