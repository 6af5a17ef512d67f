"""The database goes away and comes back (issue "Trust", item 5).

While the database is unreachable the customer API answers exactly ``ERROR_SQL`` (HTTP 200,
text/plain, no detail), the supplier endpoint answers 503 with a JSON ERROR (the agent
resends until it sees SUCCESS, which is what a supplier should do while we cannot store its
SMS), nothing leaks, and no money moves. When the database is back, the same server (no
restart) answers correctly at once, and the audit is clean.

How the database goes away:

- PostgreSQL, for real: the deployment's URL points at ``Proxy``, a TCP proxy written here
  (127.0.0.1:<free port> to the test server's 127.0.0.1:5432). ``down()`` cuts every
  connection and closes the port (new connections are refused); ``up()`` opens it again.
- SQLite: a file database does not go away while it is open (renaming its directory
  changes nothing for open connections), so the outage is simulated at the lowest level
  SQLAlchemy offers: while down, every statement the engine sends (BEGIN included) raises
  ``sqlite3.OperationalError("disk I/O error")`` from a ``before_cursor_execute`` listener,
  which takes the real error path (SQLAlchemy wraps it as ``OperationalError``; BEGIN,
  COMMIT and ROLLBACK fail too, as on a dead disk; a writer connection in doubt is
  dropped). While such a listener is installed, the write paths' statements and BEGIN,
  COMMIT, ROLLBACK go through SQLAlchemy instead of straight to the driver
  (``engine.observed``), so the listener sees every one. The hot path (``Database.one``,
  one SELECT sent straight to the driver, past SQLAlchemy's events) is wrapped on the
  deployment's Database instance to fail the same way.

Besides a plain outage, ``test_interrupted_anywhere`` takes the database away right before
each statement, in turn, of a purchase, a cancel (refund), a finish (capture) and an SMS
push: each attempt must fail cleanly with nothing half-done, and succeed after recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from otphub.db.schema import activations, journal, sms
from otphub.services import accounts
from tests import support
from tests.fuzz.checks import CUSTOMER_PATHS, JSON, TEXT, assert_no_leak
from tests.support import Hub, Seller

SETTINGS: dict[str, Any] = {"rate_limit": 0, "auth_failures_per_minute": 0}
INTERNAL_ERROR = {"status": "ERROR", "error": "internal error, retry later"}


# ---------------------------------------------------------------- ways to lose the database


class Proxy:
    """A TCP proxy in its own thread and event loop, that can be cut and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-proxy", daemon=True)
        self.thread.start()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.WriteTransport] = set()
        self.accepted = 0

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    @property
    def running(self) -> bool:
        return self.server is not None

    def start(self) -> None:
        self._run(self._start())

    def stop(self) -> None:
        self._run(self._stop())

    def close(self) -> None:
        if self.running:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    async def _start(self) -> None:
        assert self.server is None
        self.server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        assert self.server is not None
        self.server.close()  # new connections are refused from now on
        self.server = None
        for transport in list(self.transports):
            transport.abort()  # both ends see the connection die, as in a crash
        self.transports.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, upstream_writer.transport}
        self.transports |= pair
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )
        self.transports -= pair

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


class Outage:
    """Takes the deployment's database away and brings it back. Counts the statements the
    engine sends, and can take the database away right before the n-th from now."""

    def __init__(self, hub: Hub) -> None:
        engine = hub.rt.db.engine  # type: ignore[attr-defined]
        self.engine = getattr(engine, "sync_engine", engine)  # asyncio engine or not
        self.is_down = False
        self.statements = 0
        self.fail_before: int | None = None
        self.fired = False
        event.listen(self.engine, "before_cursor_execute", self._before)

    def _before(self, *_args: Any) -> None:
        self.statements += 1
        if self.fail_before is not None and self.statements == self.fail_before:
            self.fail_before = None
            self.fired = True
            self.down()
        self._statement()

    def arm(self, statement: int) -> None:
        self.statements = 0
        self.fired = False
        self.fail_before = statement

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)

    def _statement(self) -> None:
        """Called before each statement (the database is there to send it to)."""

    def down(self) -> None:
        self.is_down = True

    def up(self) -> None:
        self.is_down = False


class PostgresOutage(Outage):
    def __init__(self, hub: Hub, proxy: Proxy) -> None:
        super().__init__(hub)
        self.proxy = proxy

    def down(self) -> None:
        super().down()
        self.proxy.stop()

    def up(self) -> None:
        super().up()
        self.proxy.start()


class SqliteOutage(Outage):
    """Every statement fails with the driver's "disk I/O error" while down. The hot path
    (``Database.one``: one SELECT sent straight to the driver, past SQLAlchemy and its
    events) is wrapped on the deployment's Database instance to fail the same way."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self.db = hub.rt.db
        hot = getattr(self.db, "one", None)
        self.wrapped = hot is not None
        if hot is not None:

            async def one(statement: Any, params: Any) -> Any:
                self._before()
                return await hot(statement, params)

            self.db.one = one  # type: ignore[method-assign]

    def remove(self) -> None:
        super().remove()
        if self.wrapped:
            del self.db.one  # back to the class's method

    def _statement(self) -> None:
        if self.is_down:
            raise sqlite3.OperationalError("disk I/O error")


@pytest.fixture
def outage(
    live_server: support.LiveServer,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[tuple[Hub, Outage]]:
    """A deployment (on a clean database) whose database can be taken away."""
    proxy: Proxy | None = None
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        url = support.sqlite_copy(template, tmp_path)
    else:
        real: str = request.getfixturevalue("pg_url")
        asyncio.run(support.empty_pg(real))
        parsed = make_url(real)
        proxy = Proxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        proxy.start()
        url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    hub = support.install(live_server, url, backend, **SETTINGS)
    lost: Outage = SqliteOutage(hub) if proxy is None else PostgresOutage(hub, proxy)
    try:
        yield hub, lost
    finally:
        with contextlib.suppress(Exception):
            if lost.is_down:
                lost.up()
        lost.remove()
        support.uninstall(hub)
        if proxy is not None:
            proxy.close()


# ---------------------------------------------------------------- what must hold


@dataclass(frozen=True)
class Snapshot:
    balance: int
    activations: tuple[tuple[int, str, str | None], ...]
    sms: int
    journal: int


def snapshot(hub: Hub, key: str) -> Snapshot:
    async def read() -> Snapshot:
        customer = await accounts.authenticate_customer(hub.rt, key)
        balance = await accounts.balance(hub.rt, customer)
        async with hub.rt.db.read() as conn:
            rows = await conn.execute(
                select(activations.c.id, activations.c.state, activations.c.code).order_by(
                    activations.c.id
                )
            )
            states = tuple((int(r.id), str(r.state), r.code) for r in rows)
            sms_rows = (await conn.execute(select(func.count()).select_from(sms))).scalar_one()
            entries = (await conn.execute(select(func.count()).select_from(journal))).scalar_one()
        return Snapshot(balance, states, int(sms_rows), int(entries))

    return hub.call(read())


def assert_error_sql(response: httpx.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    assert response.headers["content-type"] == TEXT, response.headers
    assert response.content == b"ERROR_SQL", response.content[:500]


def assert_retry_later(response: httpx.Response) -> None:
    """The agent's answer while its SMS cannot be stored: 503, JSON ERROR, no detail."""
    assert_no_leak(response)
    assert response.status_code == 503, (response.status_code, response.content[:500])
    assert response.headers["content-type"] == JSON, response.headers
    assert response.json() == INTERNAL_ERROR


def customer_requests(hub: Hub, key: str, **params: Any) -> list[httpx.Response]:
    """The same request as GET, as a POST form, on both paths."""
    query = {"api_key": key, **{k: str(v) for k, v in params.items()}}
    return [
        hub.http.get(CUSTOMER_PATHS[0], params=query),
        hub.http.post(CUSTOMER_PATHS[1], data=query),
    ]


def push(hub: Hub, seller: Seller, phone: str, text: str, sms_id: int) -> httpx.Response:
    return hub.push_sms(seller, phone, text, sms_id=sms_id)


# ---------------------------------------------------------------- the outage


def test_outage_and_recovery(outage: tuple[Hub, Outage]) -> None:
    hub, lost = outage
    seller = hub.stocked(count=6)
    key = hub.customer("10.00")
    waiting, _ = hub.buy(key)
    coded, coded_phone = hub.buy(key)
    assert push(hub, seller, coded_phone, "Your code: 48213", sms_id=1).status_code == 200
    hub.clock.advance(200)  # past the early-cancel window, well before expiry
    before = snapshot(hub, key)
    assert before.balance == hub.money("9.00")
    free_phone = "79000000005"  # a number of the provider with no activation

    lost.down()
    requests: list[tuple[str, dict[str, object]]] = [
        ("getBalance", {}),
        ("getNumber", {"service": "tg"}),
        ("getNumberV2", {"service": "tg", "orderId": "o-1"}),
        ("getStatus", {"id": waiting}),
        ("getStatusV2", {"id": coded}),
        ("getFullSms", {"id": coded}),
        ("setStatus", {"id": waiting, "status": 8}),
        ("setStatus", {"id": coded, "status": 6}),
        ("setStatus", {"id": coded, "status": 3}),
        ("getActiveActivations", {}),
        ("getHistory", {}),
        ("getPrices", {}),
        ("getNumbersStatus", {}),
    ]
    for action, params in requests:
        for response in customer_requests(hub, key, action=action, **params):
            assert_error_sql(response)
    # What needs no database still answers.
    assert hub.say(None, "getBalance") == "NO_KEY"
    assert hub.say("x!", "getBalance") == "BAD_KEY"  # refused by its shape alone
    assert hub.http.get("/healthz").text == "OK"
    readiness = hub.http.get("/readyz")
    assert readiness.status_code in (503, 404), readiness  # 404: no readiness probe
    assert_no_leak(readiness)
    assert_retry_later(push(hub, seller, free_phone, "Your code: 11111", sms_id=2))
    assert_retry_later(push(hub, seller, coded_phone, "Your code: 22222", sms_id=3))
    lost.up()

    # Back: the first requests answer correctly, nothing moved while it was away.
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.00"
    assert snapshot(hub, key) == before
    assert hub.say(key, "getStatus", id=waiting) == "STATUS_WAIT_CODE"
    assert hub.say(key, "getStatus", id=coded) == "STATUS_OK:48213"
    assert hub.http.get("/readyz").status_code in (200, 404)
    # The agent resends what was refused; now it is stored and routed.
    assert push(hub, seller, free_phone, "Your code: 11111", sms_id=2).json() == {
        "status": "SUCCESS"
    }
    assert push(hub, seller, coded_phone, "Your code: 22222", sms_id=3).status_code == 200
    assert hub.say(key, "getStatus", id=coded) == "STATUS_OK:22222"
    assert hub.say(key, "setStatus", id=waiting, status=8) == "ACCESS_CANCEL"
    assert hub.say(key, "setStatus", id=coded, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.50"
    hub.buy(key)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.00"
    hub.assert_audit_clean()


def test_repeated_outages(outage: tuple[Hub, Outage]) -> None:
    """Down and up again, several times, with requests while down: the pool never keeps a
    dead connection that fails a request after recovery."""
    hub, lost = outage
    hub.stocked(count=6)
    key = hub.customer("10.00")
    for round_ in range(3):
        lost.down()
        for _ in range(3):
            for response in customer_requests(hub, key, action="getNumber", service="tg"):
                assert_error_sql(response)
        lost.up()
        for _ in range(3):  # more than one pooled connection must be good again
            assert hub.say(key, "getBalance") == f"ACCESS_BALANCE:{10 - round_ * 0.5:.2f}"
        hub.buy(key)
    hub.assert_audit_clean()


# ---------------------------------------------------------------- interrupted anywhere


def interrupted_everywhere(
    hub: Hub,
    lost: Outage,
    key: str,
    dry_run: Callable[[], object],
    attempt: Callable[[], httpx.Response],
    refused: Callable[[httpx.Response], None],
) -> int:
    """Count the statements of an operation (``dry_run``), then take the database away
    right before each of them in turn during ``attempt``: every time the answer is the
    refusal and nothing changed. Returns the number of statements."""
    lost.arm(0)
    dry_run()
    count = lost.statements
    assert count > 0
    for statement in range(1, count + 1):
        before = snapshot(hub, key)
        lost.arm(statement)
        response = attempt()
        assert lost.fired, (statement, count, response.text)
        refused(response)
        lost.up()
        assert snapshot(hub, key) == before, statement
    return count


def test_interrupted_anywhere(outage: tuple[Hub, Outage]) -> None:
    hub, lost = outage
    seller = hub.stocked(count=10)
    key = hub.customer("10.00")

    def error_sql(response: httpx.Response) -> None:
        assert_error_sql(response)

    # A purchase: the hold, the number and the activation, or none of them.
    bought = interrupted_everywhere(
        hub,
        lost,
        key,
        dry_run=lambda: hub.buy(key),
        attempt=lambda: hub.api(key, "getNumberV2", service="tg", orderId="o-7"),
        refused=error_sql,
    )
    assert hub.api(key, "getNumberV2", service="tg", orderId="o-7").json()["activationId"]

    # A cancel (the hold released) and a finish (the hold captured, the provider paid).
    cancel_dry, _ = hub.buy(key)
    cancel_id, _ = hub.buy(key)
    finish_dry, finish_dry_phone = hub.buy(key)
    finish_id, finish_phone = hub.buy(key)
    push(hub, seller, finish_dry_phone, "Your code: 10001", sms_id=10)
    push(hub, seller, finish_phone, "Your code: 10002", sms_id=11)
    hub.clock.advance(200)
    cancelled = interrupted_everywhere(
        hub,
        lost,
        key,
        dry_run=lambda: hub.say(key, "setStatus", id=cancel_dry, status=8),
        attempt=lambda: hub.api(key, "setStatus", id=cancel_id, status=8),
        refused=error_sql,
    )
    assert hub.say(key, "setStatus", id=cancel_id, status=8) == "ACCESS_CANCEL"
    finished = interrupted_everywhere(
        hub,
        lost,
        key,
        dry_run=lambda: hub.say(key, "setStatus", id=finish_dry, status=6),
        attempt=lambda: hub.api(key, "setStatus", id=finish_id, status=6),
        refused=error_sql,
    )
    assert hub.say(key, "setStatus", id=finish_id, status=6) == "ACCESS_ACTIVATION"

    # An SMS push: stored and routed, or neither (and the agent is told to resend).
    push_dry, push_dry_phone = hub.buy(key)
    push_id, push_phone = hub.buy(key)
    pushed = interrupted_everywhere(
        hub,
        lost,
        key,
        dry_run=lambda: push(hub, seller, push_dry_phone, "Your code: 30001", sms_id=20),
        attempt=lambda: push(hub, seller, push_phone, "Your code: 30002", sms_id=21),
        refused=assert_retry_later,
    )
    assert push(hub, seller, push_phone, "Your code: 30002", sms_id=21).status_code == 200
    assert hub.say(key, "getStatus", id=push_id) == "STATUS_OK:30002"
    assert hub.say(key, "getStatus", id=push_dry) == "STATUS_OK:30001"
    assert min(bought, cancelled, finished, pushed) >= 2
    hub.assert_audit_clean()
