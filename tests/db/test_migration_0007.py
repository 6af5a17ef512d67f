"""Migration 0007 (the web console's logins, sessions, failed sign-ins and operator actions),
on SQLite and PostgreSQL: an upgrade keeps the customers already there (without a login), a
downgrade to 0006 keeps everything but the console's tables and columns, and a console
session names exactly one customer or operator. Each test migrates a database of its own:
a downgrade must never touch the database other tests share."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from otphub.clock import ManualClock
from otphub.domain import errors
from otphub.services import accounts, inventory, operator_actions, purchase
from otphub.services import logins as login_service
from otphub.services.runtime import Runtime
from tests import support
from tests.db.test_migration_0006 import HEAD, _differences, _version, own_database, run, to

__all__ = ["own_database"]

CONSOLE_TABLES = {"operators", "console_sessions", "login_failures", "operator_actions"}
PASSWORD = "correct horse battery"


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def customer_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("customers")}


def select(statement: str, **params: Any) -> Any:
    def work(connection: Connection) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in connection.execute(text(statement), params)]

    return work


def with_runtime(url: str, use: Any) -> Any:
    """``use(rt)`` with a runtime on the database at ``url`` (already migrated)."""

    async def go() -> Any:
        rt = support.runtime_for(url, ManualClock())
        await rt.start(migrate_schema=False)
        try:
            return await use(rt)
        finally:
            await rt.close()

    return asyncio.run(go())


def test_upgrade_keeps_existing_customers_without_a_login(own_database: str) -> None:
    run(own_database, to("0006", down=True))
    assert run(own_database, _version) == "0006"
    assert not CONSOLE_TABLES & run(own_database, tables)
    assert {"email", "password_hash"}.isdisjoint(run(own_database, customer_columns))

    def customers_of_0006(connection: Connection) -> None:
        for name in ("Ann", "Bob"):
            connection.execute(
                text("INSERT INTO accounts (kind, balance, held) VALUES ('customer', 250, 0)")
            )
            account_id = connection.execute(text("SELECT MAX(id) FROM accounts")).scalar()
            connection.execute(
                text(
                    "INSERT INTO customers (name, account_id, created_at, dialect) "
                    "VALUES (:n, :a, 1, 'sms-activate')"
                ),
                {"n": name, "a": account_id},
            )

    run(own_database, customers_of_0006)
    before = run(own_database, select("SELECT id, name, account_id FROM customers ORDER BY id"))
    assert len(before) == 2

    run(own_database, to("head", down=False))
    assert run(own_database, _version) == HEAD
    assert run(own_database, _differences) == []
    after = run(
        own_database,
        select("SELECT id, name, account_id, email, password_hash FROM customers ORDER BY id"),
    )
    assert after == [(*row, None, None) for row in before]
    assert run(own_database, tables) >= CONSOLE_TABLES

    # Two customers without a login do not collide on the unique email; one can get a login.
    async def give_login(rt: Runtime) -> str:
        return await login_service.set_customer_login(
            rt, customer_id=int(before[0][0]), email="Ann@Example.com", password=PASSWORD
        )

    assert with_runtime(own_database, give_login) == "ann@example.com"

    async def sign_in(rt: Runtime) -> login_service.Session:
        return await login_service.sign_in(
            rt, email="ann@example.com", password=PASSWORD, address="127.0.0.1"
        )

    assert with_runtime(own_database, sign_in).subject.id == before[0][0]


def test_downgrade_to_0006_keeps_everything_but_the_console(own_database: str) -> None:
    async def populate(rt: Runtime) -> dict[str, int]:
        provider = await accounts.add_provider(rt, name="Seller")
        await inventory.set_offer(
            rt, provider_id=provider.id, service="tg", country_id=0, price=50, payout=40
        )
        await inventory.add_numbers(
            rt, provider_id=provider.id, country_id=0, phones=["79000000001"]
        )
        password_hash = await login_service.hash_password(PASSWORD)
        created = await accounts.add_customer(
            rt, name="Ann", balance=1000, login=("ann@example.com", password_hash)
        )
        await accounts.add_customer(rt, name="Bob", balance=500)
        customer = await accounts.authenticate_customer(rt, created.api_key)
        bought = await purchase.buy_number(
            rt, customer=customer, request=purchase.PurchaseRequest(service="tg", country="0")
        )
        operator_id = await login_service.add_operator(
            rt, email="root@example.com", password=PASSWORD
        )
        # A session of each kind, a failed sign-in and an operator's action.
        await login_service.sign_in(
            rt, email="ann@example.com", password=PASSWORD, address="127.0.0.1"
        )
        await login_service.sign_in(
            rt, email="root@example.com", password=PASSWORD, address="127.0.0.1"
        )
        with pytest.raises(errors.SignInRefused):
            await login_service.sign_in(
                rt, email="ann@example.com", password="wrong password", address="10.0.0.1"
            )
        async with rt.db.write() as conn:
            await operator_actions.record(
                rt,
                conn,
                operator_actions.Actor(operator_id, "root@example.com"),
                "customer.top_up",
                f"customer {created.id}",
                amount=100,
            )
        return {"customer": created.id, "activation": bought.activation_id}

    made = with_runtime(own_database, populate)
    counts = (
        "SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM activations), "
        "(SELECT COUNT(*) FROM api_keys), (SELECT COUNT(*) FROM journal), "
        "(SELECT SUM(balance) FROM accounts)"
    )
    before = run(own_database, select(counts))
    assert before[0][:2] == (2, 1)
    assert run(own_database, select("SELECT COUNT(*) FROM console_sessions")) == [(2,)]

    run(own_database, to("0006", down=True))
    assert run(own_database, _version) == "0006"
    assert not CONSOLE_TABLES & run(own_database, tables)
    assert {"email", "password_hash"}.isdisjoint(run(own_database, customer_columns))
    assert run(own_database, select(counts)) == before
    kept = run(
        own_database,
        select("SELECT customer_id FROM activations WHERE id = :a", a=made["activation"]),
    )
    assert kept == [(made["customer"],)]

    # And up again: the schema is the declared one, the customers have no login.
    run(own_database, to("head", down=False))
    assert run(own_database, _version) == HEAD
    assert run(own_database, _differences) == []
    assert run(own_database, select(counts)) == before
    assert run(own_database, select("SELECT COUNT(*) FROM customers WHERE email IS NULL")) == [(2,)]


def test_a_console_session_names_exactly_one_subject(own_database: str) -> None:
    async def subjects(rt: Runtime) -> tuple[int, int]:
        created = await accounts.add_customer(rt, name="Ann")
        operator_id = await login_service.add_operator(
            rt, email="root@example.com", password=PASSWORD
        )
        return created.id, operator_id

    customer_id, operator_id = with_runtime(own_database, subjects)
    insert = (
        "INSERT INTO console_sessions (token_digest, customer_id, operator_id, created_at, "
        "expires_at) VALUES (:d, :c, :o, 0, 1)"
    )

    def session(digest: str, customer: int | None, operator: int | None) -> Any:
        def work(connection: Connection) -> None:
            connection.execute(text(insert), {"d": digest, "c": customer, "o": operator})

        return work

    run(own_database, session("a" * 64, customer_id, None))
    run(own_database, session("b" * 64, None, operator_id))
    for digest, customer, operator in (
        ("c" * 64, customer_id, operator_id),  # both
        ("d" * 64, None, None),  # neither
    ):
        with pytest.raises(Exception) as refused:
            run(own_database, session(digest, customer, operator))
        assert "one_subject" in str(refused.value) or "CHECK" in str(refused.value)
    # A session of someone who does not exist is refused too (the foreign keys).
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        run(own_database, session("e" * 64, 999_999, None))
    assert run(own_database, select("SELECT token_digest FROM console_sessions ORDER BY 1")) == [
        ("a" * 64,),
        ("b" * 64,),
    ]
