"""A real ``otphub serve`` reselling from an upstream is killed with SIGKILL between the
phases of a purchase (the upstream holds getNumber open: phase 1 is committed, phase 3
never runs), on both databases. After the restart and the recovery of pending purchases:
nothing is held, no number is attached twice, the restarted server buys from the same
upstream again, and the audit is clean. (The recovery runs as the sweeper would once
``resolve_after`` has passed, with a clock moved past it, as tests/crash/test_agent_crash.py
does.)"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

import httpx
import pytest

from otphub.clock import ManualClock
from otphub.services import accounts
from tests.crash.test_agent_crash import _recover_later, _rows
from tests.crash.test_crash_safety import Server
from tests.support import runtime_for
from tests.upstream.fake import FakeUpstream, held_open

pytestmark = pytest.mark.slow


async def _world(url: str, upstream_url: str) -> str:
    rt = runtime_for(url, ManualClock())
    await rt.start(migrate_schema=False)
    try:
        await accounts.add_provider(
            rt, name="upstream", upstream_url=upstream_url, upstream_key="k", markup_bp=2500
        )
        customer = await accounts.add_customer(rt, name="buyer", balance=1000)
    finally:
        await rt.close()
    return customer.api_key


async def _wait_for_stock(base: str, key: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        for _ in range(200):
            answer = await client.get(
                "/stubs/handler_api.php",
                params={"api_key": key, "action": "getPrices", "service": "tg", "country": "0"},
            )
            if '"cost":0.5' in answer.text:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"the upstream's stock never appeared: {answer.text}")


def test_sigkill_between_the_phases_of_an_upstream_purchase(
    database_url: str, backend: str, fake: FakeUpstream, server_processes_turn: None
) -> None:
    fake.answers["getBalance"] = "ACCESS_BALANCE:10.00"
    fake.answers["getPrices"] = '{"0":{"tg":{"cost":0.4,"count":5}}}'
    release, held = held_open("ACCESS_NUMBER:1:79000000001")
    fake.answers["getNumber"] = held
    key = asyncio.run(_world(database_url, fake.url))
    with tempfile.TemporaryDirectory() as workdir, tempfile.NamedTemporaryFile() as log:
        server = Server(database_url, backend, Path(workdir), log)
        server.env.update(OTPHUB_UPSTREAM_POLL_SECONDS="1")

        async def first_life() -> None:
            await server.start()
            await _wait_for_stock(server.base, key)
            outcome: list[object] = []

            def buy() -> None:
                try:
                    outcome.append(
                        httpx.get(
                            f"{server.base}/stubs/handler_api.php",
                            params={"api_key": key, "action": "getNumber", "service": "tg"},
                            timeout=30,
                        ).text
                    )
                except httpx.TransportError as lost:
                    outcome.append(lost)

            buyer = threading.Thread(target=buy)
            buyer.start()
            for _ in range(500):
                if fake.of("getNumber"):
                    break
                await asyncio.sleep(0.01)
            assert await _rows(database_url, "SELECT state FROM remote_purchases") == [("pending",)]
            server.kill()
            await server.reap()
            await asyncio.to_thread(buyer.join, 30)
            assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)

        asyncio.run(first_life())
        release.set()  # the upstream's side of the dead request ends
        fake.answers["getNumber"] = "ACCESS_NUMBER:2:79000000002"

        async def second_life() -> str:
            await server.start()
            try:
                await _wait_for_stock(server.base, key)
                async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
                    answer = await client.get(
                        "/stubs/handler_api.php",
                        params={"api_key": key, "action": "getNumber", "service": "tg"},
                    )
                return answer.text
            finally:
                await server.stop()

        bought = asyncio.run(second_life())
        assert bought.startswith("ACCESS_NUMBER:") and bought.endswith(":79000000002"), bought
    assert fake.of("getNumber")[-1]["maxPrice"] == "0.40"
    recovered, report = asyncio.run(_recover_later(database_url))
    assert recovered == 1
    assert report.clean, report.problems
    assert asyncio.run(
        _rows(database_url, "SELECT state, note FROM remote_purchases ORDER BY id")
    ) == [("failed", "recovered: left pending"), ("attached", None)]
    # One open hold: the live activation's 0.50 (0.40 x 1.25); the crashed one's released.
    assert asyncio.run(
        _rows(database_url, "SELECT balance, held FROM accounts WHERE kind = 'customer'")
    ) == [(1000, 50)]
    assert asyncio.run(_rows(database_url, "SELECT phone, remote_id, payout FROM activations")) == [
        ("79000000002", "2", 40)
    ]
