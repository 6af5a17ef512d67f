"""A real ``otphub serve`` is killed with SIGKILL between the phases of a purchase from an
agent (the agent holds GET_NUMBER open: phase 1 is committed, phase 3 never runs), on both
databases. After the restart and the recovery of pending purchases: no hold is stuck, the
customer has every cent, no number is attached twice, the next purchase from the same
agent works, and the audit is clean.

The recovery runs as the sweeper would once ``resolve_after`` has passed (30 s and more of
real time after the kill): through the same use case, with a clock moved past it, instead
of waiting.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from otphub.clock import ManualClock
from otphub.services import accounts, audit, inventory, remote_purchase
from tests.crash.test_crash_safety import Server
from tests.supply.fake_agent import FakeAgent
from tests.support import runtime_for

pytestmark = pytest.mark.slow


async def _world(url: str, agent_url: str) -> str:
    rt = runtime_for(url, ManualClock())
    await rt.start(migrate_schema=False)
    try:
        provider = await accounts.add_provider(rt, name="bank", agent_url=agent_url)
        await inventory.set_offer(
            rt, provider_id=provider.id, service="tg", country_id=0, price=40, payout=30
        )
        customer = await accounts.add_customer(rt, name="buyer", balance=1000)
    finally:
        await rt.close()
    return customer.api_key


async def _rows(url: str, statement: str) -> list[tuple[object, ...]]:
    rt = runtime_for(url, ManualClock())
    try:
        async with rt.db.read() as conn:
            return [tuple(r) for r in await conn.execute(text(statement))]
    finally:
        await rt.close()


async def _recover_later(url: str) -> tuple[int, audit.AuditReport]:
    """The sweeper's recovery, an hour from now (past every resolve_after), then the audit."""
    clock = ManualClock(start=int(time.time()) + 3600)
    rt = runtime_for(url, clock)
    await rt.start(migrate_schema=False)
    try:
        recovered = await remote_purchase.recover(rt)
        return recovered, await audit.audit(rt)
    finally:
        await rt.close()


async def _wait_for_stock(base: str, key: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        for _ in range(200):
            answer = await client.get(
                "/stubs/handler_api.php",
                params={"api_key": key, "action": "getPrices", "service": "tg", "country": "0"},
            )
            if '"count"' in answer.text:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the agent's stock never appeared")


def test_sigkill_between_the_phases_leaves_nothing_held_after_recovery(
    database_url: str, backend: str, server_processes_turn: None
) -> None:
    agent = FakeAgent().start()
    agent.behaviour.stock = {"russia": {"any": {"tg": 5}}}
    agent.behaviour.numbers = [(79281234567, 1), (79281234568, 2)]
    agent.behaviour.hang = {"GET_NUMBER"}
    key = asyncio.run(_world(database_url, agent.url))
    with tempfile.TemporaryDirectory() as workdir, tempfile.NamedTemporaryFile() as log:
        server = Server(database_url, backend, Path(workdir), log)
        server.env.update(OTPHUB_AGENT_POLL_SECONDS="1", OTPHUB_AGENT_TIMEOUT_SECONDS="20")

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
            await asyncio.to_thread(agent.wait_for, "GET_NUMBER")
            # Phase 1 is committed: the hold is on the wallet.
            held = await _rows(database_url, "SELECT state FROM remote_purchases")
            assert held == [("pending",)]
            server.kill()
            await server.reap()
            await asyncio.to_thread(buyer.join, 30)
            assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)

        asyncio.run(first_life())
        agent.release()  # the agent's side of the dead request ends
        agent.behaviour.hang = set()

        async def second_life() -> str:
            await server.start()
            try:
                # The restarted server sells again from the same agent.
                await _wait_for_stock(server.base, key)
                async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
                    answer = await client.get(
                        "/stubs/handler_api.php",
                        params={"api_key": key, "action": "getNumber", "service": "tg"},
                    )
                    # The server's outbox worker tells the agent of the cancel.
                    activation_id = answer.text.split(":")[1]
                    cancel = await client.get(
                        "/stubs/handler_api.php",
                        params={
                            "api_key": key,
                            "action": "setStatus",
                            "status": "8",
                            "id": activation_id,
                        },
                    )
                    assert cancel.text == "ACCESS_CANCEL"
                    await asyncio.to_thread(agent.wait_for, "FINISH_ACTIVATION")
                return answer.text
            finally:
                await server.stop()

        bought = asyncio.run(second_life())
        # The first number went to the dead request; the agent hands out the second.
        assert bought.startswith("ACCESS_NUMBER:") and bought.endswith(":79281234568"), bought
    agent.stop()
    recovered, report = asyncio.run(_recover_later(database_url))
    assert recovered == 1
    assert report.clean, report.problems
    states = asyncio.run(
        _rows(database_url, "SELECT state, note FROM remote_purchases ORDER BY id")
    )
    assert states == [("failed", "recovered: left pending"), ("attached", None)]
    # Nothing held: the crashed purchase's hold was released, the second one cancelled.
    wallet = asyncio.run(
        _rows(database_url, "SELECT balance, held FROM accounts WHERE kind = 'customer'")
    )
    assert wallet == [(1000, 0)]
    finish = agent.of("FINISH_ACTIVATION")
    assert [(f["activationId"], f["status"]) for f in finish] == [(2, 4)]
    attached = asyncio.run(
        _rows(
            database_url,
            "SELECT phone, COUNT(*) FROM activations GROUP BY phone",
        )
    )
    assert attached == [("79281234568", 1)]
