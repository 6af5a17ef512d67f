"""Statements on web-console logins: customers' and operators' emails and password hashes,
sessions, failed sign-ins, and the operators' record of changes."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import and_, delete, func, insert, or_, select, text, update

from otphub.db.engine import Conn
from otphub.db.schema import (
    console_sessions,
    customers,
    login_failures,
    operator_actions,
    operators,
)


class Login(NamedTuple):
    """A customer's or operator's login as stored."""

    kind: str  # "customer" | "operator"
    id: int
    email: str
    password_hash: str


class SessionRow(NamedTuple):
    kind: str
    id: int
    email: str
    expires_at: int
    # A customer's row as the API's key lookup reads it (db.keys.CUSTOMER_WIDTH columns,
    # key id 0), so that services build the same ``Customer``; ``None`` for an operator.
    customer: tuple[Any, ...] | None


class ActionRow(NamedTuple):
    id: int
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    at: int


async def lock_email(conn: Conn, *, is_sqlite: bool, email: str) -> None:
    """Serialise the transactions that give out the same email, so that a check for it
    followed by a write cannot race another (SQLite serialises every write already)."""
    if not is_sqlite:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:e))"), {"e": email})


async def email_in_use(conn: Conn, email: str) -> bool:
    in_customers = select(customers.c.id).where(customers.c.email == email)
    in_operators = select(operators.c.id).where(operators.c.email == email)
    found = await conn.execute(in_customers.union_all(in_operators).limit(1))
    return found.first() is not None


async def set_customer_login(
    conn: Conn, *, customer_id: int, email: str, password_hash: str
) -> bool:
    """``False`` when there is no such customer."""
    result = await conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(email=email, password_hash=password_hash)
    )
    return result.rowcount == 1


async def customer_email(conn: Conn, customer_id: int) -> str | None:
    found = await conn.execute(select(customers.c.email).where(customers.c.id == customer_id))
    row = found.first()
    return None if row is None else row[0]


async def insert_operator(conn: Conn, *, email: str, password_hash: str, now: int) -> int:
    result = await conn.execute(
        insert(operators)
        .values(email=email, password_hash=password_hash, created_at=now)
        .returning(operators.c.id)
    )
    return int(result.scalar_one())


async def set_operator_password(conn: Conn, *, email: str, password_hash: str) -> int | None:
    """The operator's id, ``None`` when there is no operator with that email."""
    result = await conn.execute(
        update(operators)
        .where(operators.c.email == email)
        .values(password_hash=password_hash)
        .returning(operators.c.id)
    )
    row = result.first()
    return None if row is None else int(row[0])


async def login_by_email(conn: Conn, email: str) -> Login | None:
    """The customer or the operator with this email (an email is one or the other)."""
    customer = (
        await conn.execute(
            select(customers.c.id, customers.c.email, customers.c.password_hash).where(
                customers.c.email == email, customers.c.password_hash.is_not(None)
            )
        )
    ).first()
    if customer is not None:
        return Login("customer", int(customer.id), customer.email, customer.password_hash)
    operator = (
        await conn.execute(
            select(operators.c.id, operators.c.email, operators.c.password_hash).where(
                operators.c.email == email
            )
        )
    ).first()
    if operator is not None:
        return Login("operator", int(operator.id), operator.email, operator.password_hash)
    return None


async def set_password_hash(conn: Conn, login: Login, password_hash: str) -> None:
    """Store a re-hash (argon2's parameters changed since the password was set)."""
    table = customers if login.kind == "customer" else operators
    await conn.execute(
        update(table).where(table.c.id == login.id).values(password_hash=password_hash)
    )


async def recent_failures(conn: Conn, *, email: str, address: str, since: int) -> tuple[int, int]:
    """Failed sign-ins after ``since``: for this email, and from this address. A failure at
    ``t`` counts until ``t + window`` exclusive, so that waiting the ``retry_after`` that a
    refusal announces is enough."""
    by_email = select(func.count()).where(
        login_failures.c.email == email, login_failures.c.at > since
    )
    by_address = select(func.count()).where(
        login_failures.c.address == address, login_failures.c.at > since
    )
    emails = (await conn.execute(by_email)).scalar_one()
    addresses = (await conn.execute(by_address)).scalar_one()
    return int(emails), int(addresses)


async def oldest_failure(conn: Conn, *, email: str, address: str, since: int) -> int | None:
    found = await conn.execute(
        select(func.min(login_failures.c.at)).where(
            or_(login_failures.c.email == email, login_failures.c.address == address),
            login_failures.c.at > since,
        )
    )
    value = found.scalar_one()
    return None if value is None else int(value)


async def record_failure(conn: Conn, *, email: str, address: str, now: int) -> None:
    await conn.execute(insert(login_failures).values(email=email, address=address, at=now))


async def forget_failures(conn: Conn, *, email: str, before: int) -> None:
    """After a successful sign-in, that email's failures no longer count; rows older than
    the window never do, so they go too."""
    await conn.execute(
        delete(login_failures).where(
            or_(login_failures.c.email == email, login_failures.c.at <= before)
        )
    )


async def insert_session(
    conn: Conn, *, token_digest: str, kind: str, subject_id: int, now: int, expires_at: int
) -> None:
    await conn.execute(
        insert(console_sessions).values(
            token_digest=token_digest,
            customer_id=subject_id if kind == "customer" else None,
            operator_id=subject_id if kind == "operator" else None,
            created_at=now,
            expires_at=expires_at,
        )
    )


_SESSION = (
    select(
        console_sessions.c.customer_id,
        console_sessions.c.operator_id,
        func.coalesce(customers.c.email, operators.c.email).label("email"),
        console_sessions.c.expires_at,
        customers.c.account_id,
        customers.c.banned_until,
        customers.c.max_live,
        customers.c.rate_limit,
        customers.c.dialect,
    )
    .select_from(console_sessions)
    .outerjoin(customers, customers.c.id == console_sessions.c.customer_id)
    .outerjoin(operators, operators.c.id == console_sessions.c.operator_id)
)


async def session(conn: Conn, *, token_digest: str, now: int) -> SessionRow | None:
    """The live session with this digest. A customer whose login was removed or changed
    keeps no session (the email join finds nothing)."""
    row = (
        await conn.execute(
            _SESSION.where(
                console_sessions.c.token_digest == token_digest,
                console_sessions.c.expires_at > now,
            )
        )
    ).first()
    if row is None or row.email is None:
        return None
    if row.customer_id is not None:
        customer = (
            0,
            int(row.customer_id),
            int(row.account_id),
            row.banned_until,
            row.max_live,
            row.rate_limit,
            row.dialect,
        )
        return SessionRow(
            "customer", int(row.customer_id), row.email, int(row.expires_at), customer
        )
    return SessionRow("operator", int(row.operator_id), row.email, int(row.expires_at), None)


async def delete_session(conn: Conn, token_digest: str) -> None:
    await conn.execute(
        delete(console_sessions).where(console_sessions.c.token_digest == token_digest)
    )


async def delete_sessions_of(conn: Conn, *, kind: str, subject_id: int) -> None:
    """Every session of a customer or operator (their password changed)."""
    column = (
        console_sessions.c.customer_id if kind == "customer" else console_sessions.c.operator_id
    )
    await conn.execute(delete(console_sessions).where(column == subject_id))


async def purge_sessions(conn: Conn, *, now: int) -> int:
    result = await conn.execute(
        delete(console_sessions).where(console_sessions.c.expires_at <= now)
    )
    return int(result.rowcount)


async def record_action(
    conn: Conn,
    *,
    operator_id: int | None,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
    now: int,
) -> None:
    await conn.execute(
        insert(operator_actions).values(
            operator_id=operator_id,
            actor=actor,
            action=action,
            subject=subject[:128],
            detail=json.dumps(detail, sort_keys=True, default=str),
            at=now,
        )
    )


async def actions(
    conn: Conn, *, limit: int, before_id: int | None = None, actor: str | None = None
) -> list[ActionRow]:
    """The newest first, ``limit`` of them, older than ``before_id`` when given."""
    query = select(
        operator_actions.c.id,
        operator_actions.c.actor,
        operator_actions.c.action,
        operator_actions.c.subject,
        operator_actions.c.detail,
        operator_actions.c.at,
    )
    conditions = []
    if before_id is not None:
        conditions.append(operator_actions.c.id < before_id)
    if actor is not None:
        conditions.append(operator_actions.c.actor == actor)
    if conditions:
        query = query.where(and_(*conditions))
    rows = (await conn.execute(query.order_by(operator_actions.c.id.desc()).limit(limit))).all()
    return [
        ActionRow(int(r.id), r.actor, r.action, r.subject, json.loads(r.detail), int(r.at))
        for r in rows
    ]
