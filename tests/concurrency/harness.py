"""The race harness: fire many requests at once over real HTTP, read what the database holds
afterwards, and check it. Also the naive implementations the negative controls swap in.

A checker collects every violation it finds and raises one ``AssertionError`` listing them
all. Each violation starts with a tag (``OVERSOLD``, ``OVERSPENT``, ...) so that a negative
control can assert that the harness caught the very bug it planted, not something else.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import false, func, insert, select, text, true, update

from otphub.db import inventory, ledger
from otphub.db.activations import LIVE
from otphub.db.engine import Conn as AsyncConnection
from otphub.db.engine import HotStatements, SQLiteDatabase, SyncConn
from otphub.db.schema import accounts, activations, customers, journal, numbers, sms
from otphub.services import accounts as account_service
from tests.support import Hub

HANDLER = "/stubs/handler_api.php"
LIVE_INDEX = "uq_activations_live_number"

# ---------------------------------------------------------------- firing requests


def _client(url: str, concurrency: int) -> httpx.AsyncClient:
    # One connection per request: nothing queues on the client side, so every request
    # really is in flight at the same time.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60)


def _body(response: httpx.Response) -> str:
    if response.status_code != 200:
        # Never an answer of the protocol: the checkers report it as unexpected.
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return response.text


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a burst: a customer-API GET (``json`` None) or a JSON POST."""

    path: str
    params: Mapping[str, Any] | None = None
    json: Mapping[str, Any] | None = None


async def _fire(url: str, calls: Sequence[Call]) -> list[str]:
    async with _client(url, len(calls)) as client:
        responses = await asyncio.gather(
            *(
                client.get(c.path, params=dict(c.params or {}))
                if c.json is None
                else client.post(c.path, json=dict(c.json))
                for c in calls
            )
        )
    return [_body(r) for r in responses]


def fire(url: str, calls: Sequence[Call]) -> list[str]:
    """Send every request at once (from a fresh event loop in the test's thread); the
    answers, in the order of ``calls``."""
    return asyncio.run(_fire(url, calls))


def fire_api(url: str, queries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every customer-API query at once; the answers, in order."""
    return fire(url, [Call(HANDLER, params=q) for q in queries])


def fire_json(url: str, path: str, bodies: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every JSON body POSTed at once; the answers, in order."""
    return fire(url, [Call(path, json=b) for b in bodies])


# ---------------------------------------------------------------- setting up


@dataclass(frozen=True, slots=True)
class Buyer:
    id: int
    key: str
    balance: int  # minor units, as funded


def buyers(hub: Hub, count: int, balance: str) -> list[Buyer]:
    """``count`` distinct customers, each funded with ``balance``."""
    amount = hub.money(balance)

    async def create() -> list[Buyer]:
        made = []
        for i in range(count):
            new = await account_service.add_customer(hub.rt, name=f"buyer-{i}", balance=amount)
            made.append(Buyer(id=new.id, key=new.api_key, balance=amount))
        return made

    return hub.call(create())


# ---------------------------------------------------------------- reading the database


@dataclass(frozen=True, slots=True)
class LiveActivation:
    id: int
    customer_id: int
    number_id: int
    phone: str


@dataclass(frozen=True, slots=True)
class Wallet:
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


def live_activations(hub: Hub, *, provider_id: int) -> list[LiveActivation]:
    async def read() -> list[LiveActivation]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(
                    activations.c.id,
                    activations.c.customer_id,
                    activations.c.number_id,
                    activations.c.phone,
                ).where(activations.c.provider_id == provider_id, activations.c.state.in_(LIVE))
            )
            return [LiveActivation(r.id, r.customer_id, r.number_id, r.phone) for r in rows]

    return hub.call(read())


def wallets(hub: Hub, customer_ids: Sequence[int]) -> dict[int, Wallet]:
    async def read() -> dict[int, Wallet]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(customers.c.id, accounts.c.balance, accounts.c.held)
                .join(accounts, accounts.c.id == customers.c.account_id)
                .where(customers.c.id.in_(customer_ids))
            )
            return {r.id: Wallet(r.balance, r.held) for r in rows}

    return hub.call(read())


def scalar(hub: Hub, query: Any) -> Any:
    async def read() -> Any:
        async with hub.rt.db.read() as conn:
            return (await conn.execute(query)).scalar_one()

    return hub.call(read())


def activation_state(hub: Hub, activation_id: int) -> str:
    return str(scalar(hub, select(activations.c.state).where(activations.c.id == activation_id)))


def resolutions(hub: Hub, activation_id: int) -> Counter[str]:
    """The money movements of one activation after its hold: capture, release, share."""

    async def read() -> Counter[str]:
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(journal.c.kind, func.count())
                .where(journal.c.activation_id == activation_id)
                .group_by(journal.c.kind)
            )
            return Counter({str(kind): int(n) for kind, n in rows})

    return hub.call(read())


def sms_count(hub: Hub, *, provider_id: int, provider_sms_id: int) -> int:
    return int(
        scalar(
            hub,
            select(func.count())
            .select_from(sms)
            .where(sms.c.provider_id == provider_id, sms.c.provider_sms_id == provider_sms_id),
        )
    )


def live_count(hub: Hub, *, customer_id: int) -> int:
    return int(
        scalar(
            hub,
            select(func.count())
            .select_from(activations)
            .where(activations.c.customer_id == customer_id, activations.c.state.in_(LIVE)),
        )
    )


def orders(hub: Hub, *, customer_id: int, order_id: str) -> int:
    return int(
        scalar(
            hub,
            select(func.count())
            .select_from(activations)
            .where(activations.c.customer_id == customer_id, activations.c.order_id == order_id),
        )
    )


def audit_problems(hub: Hub) -> list[str]:
    return list(hub.audit().problems)


# ---------------------------------------------------------------- checkers


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise AssertionError("\n".join(problems))


@dataclass
class NumberRace:
    """Many distinct buyers, few numbers: what they were told and what the database holds."""

    price: int
    stock: int
    buyers: list[Buyer]
    answers: list[str]  # answers[i] is what buyers[i] was told
    live: list[LiveActivation]
    wallets: dict[int, Wallet]
    audit: list[str]


def check_number_race(race: NumberRace) -> None:
    """Every number sold at most once, every buyer either served or told NO_NUMBERS, every
    wallet exact, and the audit clean. Raises AssertionError listing each violation."""
    problems: list[str] = []
    sold: dict[int, tuple[int, str]] = {}  # buyer index -> (activation id, phone)
    refused = 0
    for i, answer in enumerate(race.answers):
        if answer.startswith("ACCESS_NUMBER:"):
            _, sold_id, sold_phone = answer.split(":")
            sold[i] = (int(sold_id), sold_phone)
        elif answer == "NO_NUMBERS":
            refused += 1
        else:
            problems.append(f"UNEXPECTED ANSWER to buyer {i}: {answer!r}")
    expected_sold = min(race.stock, len(race.buyers))
    if len(sold) > expected_sold:
        problems.append(f"OVERSOLD: {len(sold)} ACCESS_NUMBER answers for {race.stock} numbers")
    elif len(sold) < expected_sold:
        problems.append(f"UNDERSOLD: {len(sold)} ACCESS_NUMBER answers for {race.stock} numbers")
    if refused != len(race.buyers) - expected_sold:
        problems.append(
            f"NO_NUMBERS answered {refused} times, expected {len(race.buyers) - expected_sold}"
        )
    for answered, n in Counter(phone for _, phone in sold.values()).items():
        if n > 1:
            problems.append(f"OVERSOLD: phone {answered} answered to {n} buyers")
    for number_id, n in Counter(a.number_id for a in race.live).items():
        if n > 1:
            problems.append(f"OVERSOLD: number {number_id} has {n} live activations")
    for live_phone, n in Counter(a.phone for a in race.live).items():
        if n > 1:
            problems.append(f"OVERSOLD: phone {live_phone} is in {n} live activations")
    live_by_id = {a.id: a for a in race.live}
    if len(race.live) != len(sold):
        problems.append(f"{len(race.live)} live activations for {len(sold)} sales")
    for i, (activation_id, phone) in sold.items():
        row = live_by_id.get(activation_id)
        if row is None or row.customer_id != race.buyers[i].id or row.phone != phone:
            problems.append(f"buyer {i} was sold {activation_id}:{phone}, the database has {row}")
    for i, buyer in enumerate(race.buyers):
        wallet = race.wallets.get(buyer.id)
        held = race.price if i in sold else 0
        if wallet != Wallet(buyer.balance, held):
            problems.append(
                f"BALANCE of buyer {i}: {wallet}, expected balance {buyer.balance} held {held}"
            )
    problems.extend(f"AUDIT: {p}" for p in race.audit)
    _raise_if(problems)


@dataclass
class MoneyRace:
    """One customer firing many purchases at once for more than the wallet can pay."""

    key: str
    price: int
    funded: int  # minor units the customer was given
    answers: list[str]
    live: int  # live activations of the customer in the database
    wallet: Wallet
    audit: list[str]


def check_money_race(race: MoneyRace) -> None:
    """Exactly as many purchases as the money pays for, every other one NO_BALANCE, the wallet
    exact, and the audit clean. Raises AssertionError listing each violation."""
    problems: list[str] = []
    affordable = race.funded // race.price
    bought = sum(a.startswith("ACCESS_NUMBER:") for a in race.answers)
    refused = sum(a == "NO_BALANCE" for a in race.answers)
    others = Counter(
        a for a in race.answers if not a.startswith("ACCESS_NUMBER:") and a != "NO_BALANCE"
    )
    if bought > affordable:
        problems.append(f"OVERSPENT: {bought} purchases succeeded, the money paid for {affordable}")
    elif bought < affordable:
        problems.append(f"UNDERSOLD: {bought} purchases succeeded, the money paid for {affordable}")
    if refused != len(race.answers) - affordable:
        problems.append(
            f"NO_BALANCE answered {refused} times, expected {len(race.answers) - affordable}"
        )
    if others:
        problems.append(f"UNEXPECTED ANSWERS: {dict(others)}")
    if race.live != bought:
        problems.append(f"{race.live} live activations in the database for {bought} purchases")
    expected = Wallet(race.funded, bought * race.price)
    if race.wallet != expected:
        problems.append(f"BALANCE: {race.wallet}, expected {expected}")
    if race.wallet.available < 0 or race.wallet.held > race.funded:
        problems.append(f"OVERSPENT: wallet {race.wallet} holds more than it has")
    problems.extend(f"AUDIT: {p}" for p in race.audit)
    _raise_if(problems)


# ---------------------------------------------------------------- naive implementations


async def naive_claim_number(
    conn: AsyncConnection,
    *,
    offer: inventory.Offer,
    offer_filter: inventory.OfferFilter,
    wanted: inventory.NumberFilter,
) -> inventory.ClaimedNumber | None:
    """The textbook oversell: read a free number, then mark it taken without checking that
    it still is free (no row lock, no ``in_use = false`` guard)."""
    row = (
        await conn.execute(
            select(numbers.c.id, numbers.c.phone, numbers.c.operator)
            .where(
                numbers.c.provider_id == offer.provider_id,
                numbers.c.country_id == offer_filter.country_id,
                numbers.c.online == true(),
                numbers.c.in_use == false(),
            )
            .order_by(numbers.c.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    await asyncio.sleep(0.005)  # widen the window between the read and the write
    await conn.execute(update(numbers).where(numbers.c.id == row.id).values(in_use=True))
    return inventory.ClaimedNumber(id=row.id, phone=row.phone, operator=row.operator)


async def naive_place_hold(
    conn: AsyncConnection,
    *,
    system: ledger.SystemAccounts,
    account_id: int,
    amount: int,
    activation_id: int,
    now: int,
) -> int | None:
    """The textbook overspend: read the available balance, then write the new held amount
    computed from that stale read (a lost update)."""
    row = (
        await conn.execute(
            select(accounts.c.balance, accounts.c.held).where(accounts.c.id == account_id)
        )
    ).one()
    if row.balance - row.held < amount:
        return None
    await asyncio.sleep(0.005)
    await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(held=row.held + amount)
    )
    result = await conn.execute(
        insert(journal)
        .values(
            kind=ledger.Kind.HOLD.value,
            debit_account_id=account_id,
            credit_account_id=system.revenue,
            amount=amount,
            activation_id=activation_id,
            created_at=now,
        )
        .returning(journal.c.id)
    )
    return int(result.scalar_one())


@contextmanager
def unserialised_writes(hub: Hub) -> Iterator[None]:
    """Take away SQLite's serialisation of write transactions for this deployment.

    On SQLite every write transaction runs under ``BEGIN IMMEDIATE`` behind an asyncio lock,
    so even a naive read-then-write is correct there: nothing can run between the read and
    the write. Replacing that with a plain deferred ``BEGIN`` is not enough to show a race
    either: SQLite is serialisable, and a transaction that read a snapshot and then tries to
    write after another writer committed fails with SQLITE_BUSY (ERROR_SQL), never with a
    lost update. So for the negative controls, writes run in autocommit mode, each statement
    its own transaction, without the asyncio lock: that is the "no protection at all" case in
    which a read-then-write can interleave with another.

    PostgreSQL needs nothing here: its write transactions are READ COMMITTED and take no
    global lock, so a naive read-then-write already races.
    """
    db = hub.rt.db
    if not db.is_sqlite:
        yield
        return
    assert isinstance(db, SQLiteDatabase)
    engine = db.engine  # the SQLite database's own (synchronous) engine

    @asynccontextmanager
    async def write() -> AsyncIterator[SyncConn]:
        # The driver runs in autocommit mode (OTPHub emits BEGIN itself): without it,
        # every statement is its own transaction.
        with engine.connect() as conn:
            yield SyncConn(conn, HotStatements(engine.dialect))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db, "write", write)
        yield


async def _index_sql(conn: AsyncConnection, *, is_sqlite: bool) -> str:
    if is_sqlite:
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    return str((await conn.execute(text(query), {"name": LIVE_INDEX})).scalar_one())


def live_number_index_sql(hub: Hub) -> str:
    """The SQL that creates the partial unique index (one live activation per number)."""

    async def read() -> str:
        async with hub.rt.db.read() as conn:
            return await _index_sql(conn, is_sqlite=hub.rt.db.is_sqlite)

    return hub.call(read())


def drop_live_number_index(hub: Hub) -> None:
    """Drop the database's backstop against selling one number twice, so that a negative
    control sees what the harness itself detects."""

    async def drop() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(text(f"DROP INDEX {LIVE_INDEX}"))

    hub.call(drop())


def restore_pg(hub: Hub, index_sql: str, tables: Sequence[str]) -> None:
    """Empty the (session-shared) PostgreSQL database a negative control corrupted, and
    recreate the index it may have dropped, exactly as it was."""

    async def restore() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            await conn.execute(text(f"DROP INDEX IF EXISTS {LIVE_INDEX}"))
            await conn.execute(text(index_sql))

    hub.call(restore())


async def no_wallet_lock(conn: AsyncConnection, account_id: int) -> None:
    """The negative control's purchase takes no wallet lock."""
