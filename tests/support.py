"""Test support: a live uvicorn server on 127.0.0.1 in a background thread, fresh databases
on SQLite and PostgreSQL, and ``Hub``, a small driver for one test's deployment.

The server runs in its own thread and event loop for the whole session; each test builds a
new ``Runtime`` on a clean database (inside the server's loop, since asyncpg connections
belong to the loop that opened them) and swaps a new app in. Use cases that a test calls
directly run in the server's loop through ``Hub.call``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from otphub.clock import ManualClock
from otphub.config import Settings
from otphub.db import ledger
from otphub.db.engine import open_database
from otphub.http.app import create_app
from otphub.services import accounts, audit, inventory
from otphub.services.runtime import Runtime

T = TypeVar("T")

PG_ADMIN_URL = os.environ.get(
    "OTPHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_SECRET = "test-secret-not-for-production"
# Tables that tests may empty; the catalog and Alembic's version stay.
DATA_TABLES = (
    "audit_runs",
    "operator_actions",
    "login_failures",
    "console_sessions",
    "operators",
    "activation_changes",
    "idempotency_keys",
    "webhooks",
    "outbox",
    "remote_purchases",
    "remote_stock",
    "retired_numbers",
    "country_aliases",
    "api_keys",
    "sms",
    "journal",
    "activations",
    "numbers",
    "offers",
    "customers",
    "providers",
    "schedules",
    "accounts",
)


class SwappableApp:
    """The ASGI app the live server serves: delegates to whatever app the test installed."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # The runtime's life is managed by the fixtures, not by the server.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.app is not None, "no app installed"
        await self.app(scope, receive, send)


class LiveServer:
    def __init__(self) -> None:
        self.app = SwappableApp()
        self.loop = asyncio.new_event_loop()
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets it knows are TCP; without it
        # every answer waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            backlog=2048,
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return
            threading.Event().wait(0.01)
        raise RuntimeError("live server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


# ---------------------------------------------------------------- databases


def run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: fixtures work in a test thread whose event
    loop is already running (Playwright's sync API keeps one running while a browser test
    module is open)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://"))
        engine.dispose()
    except Exception:
        return False
    url = make_url(PG_ADMIN_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2):
            return True
    except OSError:
        return False


async def _admin(statement: str) -> None:
    import asyncpg

    url = make_url(PG_ADMIN_URL)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_pg_database() -> str:
    name = f"otphub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    run_apart(_admin(f'CREATE DATABASE "{name}"'))
    return str(make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    run_apart(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def migrate(url: str) -> None:
    rt = runtime_for(url, ManualClock())
    try:
        await rt.start()
    finally:
        await rt.close()


async def empty_pg(url: str) -> None:
    db = open_database(url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
            await ledger.ensure_system_accounts(conn)
    finally:
        await db.dispose()


def sqlite_copy(template: Path, target_dir: Path) -> str:
    target = target_dir / "otphub.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def settings_for(url: str, **overrides: Any) -> Settings:
    # No stock cache: tests look at the stock right after changing it.
    values: dict[str, Any] = {
        "database_url": url,
        "secret": TEST_SECRET,
        "sweep_interval": 0.2,
        "stock_cache_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def runtime_for(url: str, clock: ManualClock, **overrides: Any) -> Runtime:
    settings = settings_for(url, **overrides)
    db = open_database(url, sqlite_synchronous=settings.sqlite_synchronous)
    return Runtime(db=db, settings=settings, clock=clock, secret=settings.secret_bytes())


# ---------------------------------------------------------------- the test's deployment


@dataclass
class Seller:
    id: int
    key: str


class Hub:
    """One test's OTPHub: its runtime, clock, live URL, and shortcuts to set it up."""

    def __init__(self, live: LiveServer, rt: Runtime, clock: ManualClock, backend: str) -> None:
        self.live = live
        self.rt = rt
        self.clock = clock
        self.backend = backend
        self.url = live.url
        self.http = httpx.Client(base_url=live.url, timeout=30)

    # -- running use cases in the server's loop
    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.live.call(coro)

    # -- setup shortcuts
    def money(self, text_amount: str) -> int:
        return self.rt.money.parse(text_amount, allow_zero=True)

    def customer(self, balance: str = "10.00", name: str = "customer") -> str:
        created = self.call(accounts.add_customer(self.rt, name=name, balance=self.money(balance)))
        return created.api_key

    def customer_id(self, balance: str = "10.00", name: str = "customer") -> tuple[int, str]:
        created = self.call(accounts.add_customer(self.rt, name=name, balance=self.money(balance)))
        return created.id, created.api_key

    def provider(self, name: str | None = None) -> Seller:
        created = self.call(
            accounts.add_provider(self.rt, name=name or f"p-{uuid.uuid4().hex[:6]}")
        )
        return Seller(created.id, created.key)

    def offer(
        self,
        provider: Seller,
        *,
        service: str = "tg",
        country: int = 0,
        price: str = "0.50",
        payout: str | None = None,
    ) -> None:
        self.call(
            inventory.set_offer(
                self.rt,
                provider_id=provider.id,
                service=service,
                country_id=country,
                price=self.money(price),
                payout=None if payout is None else self.money(payout),
            )
        )

    def numbers(
        self, provider: Seller, phones: list[str], *, country: int = 0, operator: str | None = None
    ) -> None:
        self.call(
            inventory.add_numbers(
                self.rt,
                provider_id=provider.id,
                country_id=country,
                phones=phones,
                operator=operator,
            )
        )

    def stocked(
        self,
        *,
        count: int = 3,
        service: str = "tg",
        country: int = 0,
        price: str = "0.50",
        payout: str | None = "0.40",
        operator: str = "mts",
        first_phone: int = 79000000001,
    ) -> Seller:
        """A provider with an offer and ``count`` numbers."""
        seller = self.provider()
        self.offer(seller, service=service, country=country, price=price, payout=payout)
        phones = [str(first_phone + i) for i in range(count)]
        self.numbers(seller, phones, country=country, operator=operator)
        return seller

    # -- the protocols
    def api(self, key: str | None, action: str | None, **params: Any) -> httpx.Response:
        query: dict[str, Any] = {}
        if key is not None:
            query["api_key"] = key
        if action is not None:
            query["action"] = action
        query.update({k: v for k, v in params.items() if v is not None})
        return self.http.get("/stubs/handler_api.php", params=query)

    def say(self, key: str | None, action: str | None, **params: Any) -> str:
        """The body of a customer-API answer, asserting the protocol's HTTP shape."""
        response = self.api(key, action, **params)
        assert response.status_code == 200, response.text
        return response.text

    def buy(self, key: str, service: str = "tg", **params: Any) -> tuple[int, str]:
        body = self.say(key, "getNumber", service=service, **params)
        assert body.startswith("ACCESS_NUMBER:"), body
        _, activation_id, phone = body.split(":")
        return int(activation_id), phone

    def push_sms(
        self, provider: Seller, phone: str, text: str, sms_id: int | None = None
    ) -> httpx.Response:
        body = {
            "action": "PUSH_SMS",
            "key": provider.key,
            "smsId": sms_id if sms_id is not None else uuid.uuid4().int % 10**12,
            "phone": int(phone),
            "phoneFrom": "Service",
            "text": text,
        }
        return self.http.post("/agent/api/sms", json=body)

    def audit(self) -> audit.AuditReport:
        return self.call(audit.audit(self.rt))

    def assert_audit_clean(self) -> None:
        report = self.audit()
        assert report.clean, report.problems

    def close(self) -> None:
        self.http.close()


def install(live: LiveServer, url: str, backend: str, **overrides: Any) -> Hub:
    clock = ManualClock()
    rt = runtime_for(url, clock, **overrides)
    # The database is migrated already (template copy or emptied PostgreSQL database).
    live.call(rt.start(migrate_schema=False))
    live.app.app = create_app(rt, manage_runtime=False, workers=())
    return Hub(live, rt, clock, backend)


def uninstall(hub: Hub) -> None:
    hub.close()
    hub.live.app.app = None
    hub.live.call(hub.rt.close())
