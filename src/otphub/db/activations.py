"""Statements on activations and SMS. State changes are compare-and-set: an UPDATE that
names the states it may leave, so of two racing requests exactly one wins."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Select, Update, bindparam, func, insert, or_, select, text, update

from otphub.db import states
from otphub.db.engine import Conn, Database, insert_or_nothing, run
from otphub.db.schema import activations, numbers, sms
from otphub.domain.activation import ENDED_STATES, LIVE_STATES, State
from otphub.domain.activation import Activation as Activation  # read by callers from here

LIVE = states.values(LIVE_STATES)
# "Live", written exactly as the partial indexes' predicate (see db/states.py: SQLite uses
# a partial index only when the query repeats its predicate).
IS_LIVE = text(states.state_in(LIVE_STATES, "activations.state"))
# Likewise for the partial unique index on finished activations.
IS_FINISHED = text(states.state_in({State.FINISHED}, "activations.state"))
# And for the partial index on cancelled activations (the cancelled-numbers rule).
IS_CANCELLED = text(states.state_in({State.CANCELLED}, "activations.state"))


ACTIVATION_COLUMNS = tuple(activations.c[name] for name in Activation._fields)

# The status poll's statement, built once (see Database.one).
OF_CUSTOMER = select(*ACTIVATION_COLUMNS).where(
    activations.c.id == bindparam("id"), activations.c.customer_id == bindparam("customer_id")
)
# Whether a customer has an activation past its deadline (the partial index answers it).
HAS_OVERDUE = (
    select(activations.c.id)
    .where(
        activations.c.customer_id == bindparam("customer_id"),
        IS_LIVE,
        activations.c.expires_at <= bindparam("now"),
    )
    .limit(1)
)


async def of_customer(db: Database, *, activation_id: int, customer_id: int) -> Activation | None:
    """The customer's activation, read outside any transaction (the status poll's hot
    read); another customer's id finds nothing, exactly like a missing one."""
    row = await db.one(OF_CUSTOMER, {"id": activation_id, "customer_id": customer_id})
    return Activation.from_row(row) if row is not None else None


async def has_overdue(db: Database, *, customer_id: int, now: int) -> bool:
    """Whether the customer has a live activation past its deadline, outside any
    transaction: one indexed read on most requests, which find none."""
    return await db.one(HAS_OVERDUE, {"customer_id": customer_id, "now": now}) is not None


_INSERT = insert(activations).returning(activations.c.id)


async def insert_activation(conn: Conn, **values: object) -> int:
    return int((await run(conn, _INSERT, values)).scalar_one())


async def order_exists(conn: Conn, *, customer_id: int, order_id: str) -> bool:
    found = await run(conn, _ORDER_EXISTS, {"customer_id": customer_id, "order_id": order_id})
    return found.first() is not None


async def get(
    conn: Conn,
    activation_id: int,
    *,
    customer_id: int | None = None,
    for_update: bool = False,
    skip_locked: bool = False,
) -> Activation | None:
    """One activation; with ``customer_id``, only if it belongs to that customer, so that
    another customer's id looks exactly like a missing one."""
    query = _get_statement(customer_id is not None, for_update, skip_locked)
    row = (await run(conn, query, {"id": activation_id, "customer_id": customer_id})).first()
    return Activation.from_row(row) if row is not None else None


# Built once per variant (see ledger: building a statement per call costs more than
# running it).
@functools.cache
def _get_statement(of_customer: bool, for_update: bool, skip_locked: bool) -> Select[Any]:
    query = select(*ACTIVATION_COLUMNS).where(activations.c.id == bindparam("id"))
    if of_customer:
        query = query.where(activations.c.customer_id == bindparam("customer_id"))
    if for_update:
        query = query.with_for_update(skip_locked=skip_locked)
    return query


async def move(
    conn: Conn,
    activation_id: int,
    *,
    leaving: Iterable[State],
    to: State,
    **values: object,
) -> bool:
    """Compare-and-set the state; ``False`` when the activation was no longer in ``leaving``."""
    statement = _move_statement(tuple(s.value for s in leaving), to.value)
    result = await run(conn, statement, {"activation_id": activation_id, **values})
    return result.rowcount == 1


@functools.lru_cache(maxsize=64)
def _move_statement(leaving: tuple[str, ...], to: str) -> Update:
    # The other changed columns come with the parameters (SQLAlchemy adds a SET for each).
    # One equality per state rather than IN: an IN list is expanded at every execution,
    # which keeps the statement off the driver's direct path (see engine.run).
    return (
        update(activations)
        .where(
            activations.c.id == bindparam("activation_id"),
            or_(*(activations.c.state == state for state in leaving)),
        )
        .values(state=to)
    )


async def mark_ready(conn: Conn, activation_id: int, now: int) -> None:
    await conn.execute(
        update(activations)
        .where(activations.c.id == activation_id, activations.c.ready_at.is_(None))
        .values(ready_at=now)
    )


async def overdue(conn: Conn, *, now: int, limit: int) -> list[int]:
    """Ids of live activations past their deadline, oldest deadline first (the sweeper
    then resolves each in its own transaction)."""
    rows = await conn.execute(
        select(activations.c.id)
        .where(IS_LIVE, activations.c.expires_at <= now)
        .order_by(activations.c.expires_at)
        .limit(limit)
    )
    return [int(r.id) for r in rows]


async def live_on_number(conn: Conn, number_id: int) -> Activation | None:
    row = (await run(conn, _LIVE_ON_NUMBER, {"number_id": number_id})).first()
    return Activation.from_row(row) if row is not None else None


# The statements of an SMS push, built once (see ledger).
_LIVE_ON_NUMBER = (
    select(*ACTIVATION_COLUMNS)
    .where(activations.c.number_id == bindparam("number_id"), IS_LIVE)
    .with_for_update()
)
_NUMBER_OF_PROVIDER = select(numbers.c.id).where(
    numbers.c.provider_id == bindparam("provider_id"), numbers.c.phone == bindparam("phone")
)
_STORE_SMS = {
    is_sqlite: statement.returning(sms.c.id)
    for is_sqlite, statement in insert_or_nothing(
        sms, conflict_on=["provider_id", "provider_sms_id"]
    ).items()
}
_MATCH_SMS = (
    update(sms)
    .where(sms.c.id == bindparam("sms_id"))
    .values(activation_id=bindparam("matched_activation_id"))
)
_COUNT_LIVE = (
    select(func.count())
    .select_from(activations)
    .where(activations.c.customer_id == bindparam("customer_id"), IS_LIVE)
)
_ORDER_EXISTS = select(activations.c.id).where(
    activations.c.customer_id == bindparam("customer_id"),
    activations.c.order_id == bindparam("order_id"),
)


async def number_of_provider(conn: Conn, *, provider_id: int, phone: str) -> int | None:
    found = await run(conn, _NUMBER_OF_PROVIDER, {"provider_id": provider_id, "phone": phone})
    value = found.scalar()
    return int(value) if value is not None else None


async def store_sms(
    conn: Conn,
    *,
    is_sqlite: bool,
    provider_id: int,
    provider_sms_id: int,
    phone: str,
    phone_from: str | None,
    text: str,
    code: str,
    now: int,
) -> int | None:
    """Insert an SMS once per (provider, smsId); ``None`` when it was already stored."""
    values = {
        "provider_id": provider_id,
        "provider_sms_id": provider_sms_id,
        "phone": phone,
        "phone_from": phone_from,
        "text": text,
        "code": code,
        "received_at": now,
    }
    value = (await run(conn, _STORE_SMS[is_sqlite], values)).scalar()
    return int(value) if value is not None else None


async def match_sms(conn: Conn, *, sms_id: int, activation_id: int) -> None:
    await run(conn, _MATCH_SMS, {"sms_id": sms_id, "matched_activation_id": activation_id})


async def count_live(conn: Conn, customer_id: int) -> int:
    return int((await run(conn, _COUNT_LIVE, {"customer_id": customer_id})).scalar_one())


async def awaiting_sms(
    conn: Conn, *, provider_id: int, bought_before: int, limit: int = 50
) -> list[Activation]:
    """Live activations of a provider that wait for an SMS: bought a while ago and still
    without a code, or put back to retry by the customer. Used by the demo simulator."""
    rows = await conn.execute(
        select(*ACTIVATION_COLUMNS)
        .where(
            activations.c.provider_id == provider_id,
            (
                (activations.c.state == State.WAITING.value)
                & (activations.c.created_at <= bought_before)
            )
            | (activations.c.state == State.RETRY.value),
        )
        .order_by(activations.c.id)
        .limit(limit)
    )
    return [Activation.from_row(r) for r in rows]


async def live_of_customer(conn: Conn, customer_id: int) -> list[Activation]:
    rows = await conn.execute(
        select(*ACTIVATION_COLUMNS)
        .where(activations.c.customer_id == customer_id, IS_LIVE)
        .order_by(activations.c.id)
    )
    return [Activation.from_row(r) for r in rows]


async def overdue_of_customer(conn: Conn, *, customer_id: int, now: int) -> list[int]:
    rows = await conn.execute(
        select(activations.c.id).where(
            activations.c.customer_id == customer_id,
            IS_LIVE,
            activations.c.expires_at <= now,
        )
    )
    return [int(r.id) for r in rows]


async def ended_of_customer(
    conn: Conn, *, customer_id: int, start: int, end: int, offset: int, limit: int
) -> list[Activation]:
    """Finished and cancelled activations bought in [start, end], newest first."""
    rows = await conn.execute(
        select(*ACTIVATION_COLUMNS)
        .where(
            activations.c.customer_id == customer_id,
            activations.c.state.in_(states.values(ENDED_STATES)),
            activations.c.created_at >= start,
            activations.c.created_at <= end,
        )
        .order_by(activations.c.created_at.desc(), activations.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [Activation.from_row(r) for r in rows]


async def sms_texts(conn: Conn, activation_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """(text, code) of every SMS matched to the activations, oldest first."""
    found: dict[int, list[tuple[str, str]]] = {i: [] for i in activation_ids}
    if not activation_ids:
        return found
    rows = await conn.execute(
        select(sms.c.activation_id, sms.c.text, sms.c.code)
        .where(sms.c.activation_id.in_(activation_ids))
        .order_by(sms.c.id)
    )
    for row in rows:
        found[int(row.activation_id)].append((str(row.text), str(row.code)))
    return found


async def of_order(conn: Conn, *, customer_id: int, order_id: str) -> Activation | None:
    """The customer's activation bought with this order id (API v1's idempotency keys)."""
    row = (
        await conn.execute(
            select(*ACTIVATION_COLUMNS).where(
                activations.c.customer_id == customer_id, activations.c.order_id == order_id
            )
        )
    ).first()
    return Activation.from_row(row) if row is not None else None


async def page_of_customer(
    conn: Conn, *, customer_id: int, states_in: Iterable[State], offset: int, limit: int
) -> list[Activation]:
    """The customer's activations in these states, newest first (the index on customer
    and purchase time gives the order; the id breaks ties within a second)."""
    wanted = set(states_in)
    query = select(*ACTIVATION_COLUMNS).where(activations.c.customer_id == customer_id)
    if wanted == set(LIVE_STATES):
        query = query.where(IS_LIVE)  # the partial index's predicate, written as it is
    elif wanted != set(State):
        query = query.where(activations.c.state.in_(states.values(wanted)))
    rows = await conn.execute(
        query.order_by(activations.c.created_at.desc(), activations.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [Activation.from_row(r) for r in rows]


_SMS_OF = (
    select(sms.c.id, sms.c.text, sms.c.code, sms.c.received_at)
    .where(sms.c.activation_id == bindparam("activation_id"), sms.c.id > bindparam("after"))
    .order_by(sms.c.id)
)


async def sms_of(db: Database, *, activation_id: int, after: int = 0) -> list[StoredSms]:
    """The SMS matched to the activation with an id past ``after``, oldest first (the
    event stream's SMS events), in one read outside any transaction."""
    async with db.read() as conn:
        rows = await conn.execute(_SMS_OF, {"activation_id": activation_id, "after": after})
        return [StoredSms(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


class StoredSms(NamedTuple):
    id: int
    text: str
    code: str
    received_at: int


async def browse_of_customer(
    conn: Conn,
    *,
    customer_id: int,
    service: str | None,
    states_in: Iterable[State] | None,
    since: int | None,
    until: int | None,
    limit: int,
    offset: int = 0,
    before: tuple[int, int] | None = None,
) -> list[Activation]:
    """The customer's activations bought in [since, until), of this service and in these
    states when given, newest first (the index on customer and purchase time gives the
    order). ``before`` = (created_at, id) of the last row of a previous batch: the rows
    after it (the web console's CSV reads in batches that way)."""
    query = select(*ACTIVATION_COLUMNS).where(activations.c.customer_id == customer_id)
    if service is not None:
        query = query.where(activations.c.service == service)
    if states_in is not None:
        wanted = set(states_in)
        if wanted == set(LIVE_STATES):
            query = query.where(IS_LIVE)
        else:
            query = query.where(activations.c.state.in_(states.values(wanted)))
    if since is not None:
        query = query.where(activations.c.created_at >= since)
    if until is not None:
        query = query.where(activations.c.created_at < until)
    if before is not None:
        created_at, activation_id = before
        query = query.where(
            or_(
                activations.c.created_at < created_at,
                (activations.c.created_at == created_at) & (activations.c.id < activation_id),
            )
        )
    rows = await conn.execute(
        query.order_by(activations.c.created_at.desc(), activations.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [Activation.from_row(r) for r in rows]
