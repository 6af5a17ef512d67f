"""A real second OTPHub as the upstream: ``otphub serve`` in a subprocess on a free port,
with its own database and secret. Each test gets a fresh world in it (a local-inventory
provider with an offer and numbers, and the reseller's customer account, topped up); the
offers of the previous test's world are disabled, so that one server serves a whole
session per database kind."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from otphub.clock import ManualClock
from otphub.services import accounts, audit, inventory, lifecycle, operator, reports
from otphub.services.runtime import Runtime
from tests import support

T = TypeVar("T")
SECRET = "second-otphub-test-secret"
BIN = Path(sys.executable).parent
_phones = itertools.count(79_500_000_001, 100)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    """One test's accounts at the upstream."""

    provider_id: int
    provider_key: str
    offer_id: int
    phones: list[str]
    reseller_id: int  # the reseller's customer account there
    reseller_key: str  # its API key there: the reseller's upstream key


class SecondOtphub:
    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        if backend == "sqlite":
            self.database_url = f"sqlite:///{workdir / 'upstream.db'}"
        else:
            self.database_url = support.create_pg_database()
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.world: World | None = None

    @property
    def handler_url(self) -> str:
        return f"{self.base}/stubs/handler_api.php"

    def start(self) -> None:
        asyncio.run(support.migrate(self.database_url))
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTPHUB_")}
        env.update(
            OTPHUB_DATABASE_URL=self.database_url,
            OTPHUB_SECRET=SECRET,
            OTPHUB_EARLY_CANCEL="0",
            OTPHUB_RATE_LIMIT="0",
            OTPHUB_STOCK_CACHE_SECONDS="0",
            OTPHUB_LOG_LEVEL="warning",
            OTPHUB_DATABASE_POOL_SIZE=os.environ.get("OTPHUB_DATABASE_POOL_SIZE", "4"),
        )
        self.log_path = self.workdir / "upstream.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "otphub"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        for _ in range(400):
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(self.log_path.read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.backend == "postgresql":
            support.drop_pg_database(self.database_url)

    # -- its database, from the test (a second "node" of the upstream)
    def run(self, use_case: Callable[[Runtime], Awaitable[T]], *, ahead: int = 0) -> T:
        """A use case on the upstream's database, with a clock ``ahead`` seconds ahead."""

        async def go() -> T:
            rt = support.runtime_for(
                self.database_url, ManualClock(int(time.time()) + ahead), secret=SECRET
            )
            await rt.start(migrate_schema=False)
            try:
                return await use_case(rt)
            finally:
                await rt.close()

        return asyncio.run(go())

    def new_world(
        self, *, price: int = 40, payout: int = 30, numbers: int = 3, balance: int = 1000
    ) -> World:
        """A fresh provider (offer for tg in country 0, ``numbers`` numbers) and reseller
        account; the previous world's offer is disabled."""
        previous = self.world

        async def seed(rt: Runtime) -> World:
            if previous is not None:
                await operator.set_offer_enabled(rt, offer_id=previous.offer_id, enabled=False)
            provider = await accounts.add_provider(rt, name=f"rack-{time.monotonic_ns()}")
            offer_id = await inventory.set_offer(
                rt, provider_id=provider.id, service="tg", country_id=0, price=price, payout=payout
            )
            first = next(_phones)
            phones = [str(first + i) for i in range(numbers)]
            await inventory.add_numbers(rt, provider_id=provider.id, country_id=0, phones=phones)
            reseller = await accounts.add_customer(
                rt, name=f"reseller-{time.monotonic_ns()}", balance=balance
            )
            return World(provider.id, provider.key, offer_id, phones, reseller.id, reseller.api_key)

        self.world = self.run(seed)
        return self.world

    # -- what happens at the upstream
    def push_sms(self, phone: str, text: str) -> None:
        assert self.world is not None
        response = httpx.post(
            f"{self.base}/agent/api/sms",
            json={
                "action": "PUSH_SMS",
                "key": self.world.provider_key,
                "smsId": time.monotonic_ns(),
                "phone": int(phone),
                "phoneFrom": "Telegram",
                "text": text,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def say(self, action: str, **params: str) -> str:
        """The reseller's own request at the upstream (with its key there)."""
        assert self.world is not None
        response = httpx.get(
            self.handler_url,
            params={"api_key": self.world.reseller_key, "action": action, **params},
            timeout=10,
        )
        assert response.status_code == 200
        return response.text

    def expire_everything(self) -> int:
        """The upstream's sweeper, an hour from now: every live activation there ends."""
        return self.run(lifecycle.sweep, ahead=3600)

    # -- its ledger
    def reseller_wallet(self) -> tuple[int, int]:
        """The reseller's balance there and what it has held there."""
        assert self.world is not None
        world = self.world

        async def read(rt: Runtime) -> tuple[int, int]:
            found = await reports.show_customer(rt, customer_id=world.reseller_id)
            return found.customer.balance, found.customer.held

        return self.run(read)

    def reseller_balance(self) -> int:
        """Available: balance minus holds."""
        balance, held = self.reseller_wallet()
        return balance - held

    def provider_payable(self) -> int:
        assert self.world is not None
        world = self.world

        async def read(rt: Runtime) -> int:
            return (await reports.show_provider(rt, provider_id=world.provider_id)).provider.payable

        return self.run(read)

    def assert_audit_clean(self) -> None:
        report = self.run(audit.audit)
        assert report.clean, report.problems
