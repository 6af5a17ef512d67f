"""Two server processes on one database, coordinated by nothing but the database: their
purchases never oversell, and their background loops (the expiry sweeper runs in both)
never do the same work twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from otphub.clock import SystemClock
from otphub.db.schema import sms
from otphub.services import accounts, audit, inventory
from tests.support import runtime_for

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SECRET = "two-nodes-secret"
METRICS_TOKEN = "two-nodes-metrics-token-0123456789"
TTL = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(url: str, *, numbers: int, customers: int) -> tuple[str, list[str]]:
    async def run() -> tuple[str, list[str]]:
        rt = runtime_for(url, SystemClock(), secret=SECRET)  # type: ignore[arg-type]
        await rt.start(migrate_schema=False)
        try:
            provider = await accounts.add_provider(rt, name="rack")
            await inventory.set_offer(
                rt, provider_id=provider.id, service="tg", country_id=0, price=50, payout=40
            )
            await inventory.add_numbers(
                rt,
                provider_id=provider.id,
                country_id=0,
                phones=[str(79000000000 + i) for i in range(numbers)],
            )
            keys = [
                (await accounts.add_customer(rt, name=f"c{i}", balance=500)).api_key
                for i in range(customers)
            ]
            return provider.key, keys
        finally:
            await rt.close()

    return asyncio.run(run())


@pytest.fixture
def nodes(database_url: str, tmp_path: Path, server_processes_turn: None) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "OTPHUB_DATABASE_URL": database_url,
        "OTPHUB_SECRET": SECRET,
        "OTPHUB_ACTIVATION_TTL": str(TTL),
        "OTPHUB_SWEEP_INTERVAL": "0.2",
        "OTPHUB_RATE_LIMIT": "0",
        "OTPHUB_METRICS_TOKEN": METRICS_TOKEN,
        "OTPHUB_LOG_LEVEL": "warning",
    }
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    for index in range(2):
        port = free_port()
        log = (tmp_path / f"node{index}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [str(BIN / "otphub"), "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    for base in bases:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError((tmp_path / "node0.log").read_text())
    yield bases
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=20)


def counter(base: str, name: str) -> float:
    scrape = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    for line in scrape.text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == name:
            return float(value)
    return 0.0


def test_two_nodes_share_purchases_and_the_sweeper_without_doing_work_twice(
    nodes: list[str], database_url: str
) -> None:
    started = time.monotonic()
    provider_key, keys = seed(database_url, numbers=30, customers=60)

    async def buy_everywhere() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=120)
        ) as client:

            async def buy(index: int, key: str) -> tuple[str, str]:
                base = nodes[index % 2]
                answer = await client.get(
                    f"{base}/stubs/handler_api.php",
                    params={"api_key": key, "action": "getNumber", "service": "tg"},
                )
                return key, answer.text

            return await asyncio.gather(*(buy(i, k) for i, k in enumerate(keys)))

    answers = asyncio.run(buy_everywhere())
    sold = [(key, text) for key, text in answers if text.startswith("ACCESS_NUMBER:")]
    assert len(sold) == 30, sorted({t for _, t in answers})
    assert sum(t == "NO_NUMBERS" for _, t in answers) == 30, sorted(
        {t for _, t in answers if not t.startswith("ACCESS")}
    )
    assert len({text.split(":")[2] for _, text in sold}) == 30
    # A code for a third of them (finished at expiry), none for the rest (refunded).
    with httpx.Client(timeout=10) as client:
        for _key, text in sold[:10]:
            phone = int(text.split(":")[2])
            pushed = client.post(
                f"{nodes[1]}/agent/api/sms",
                json={
                    "action": "PUSH_SMS",
                    "key": provider_key,
                    "smsId": phone,
                    "phone": phone,
                    "text": "code 12345",
                },
            )
            assert pushed.json() == {"status": "SUCCESS"}
    # Both sweepers run every 0.2 s; wait until every activation is over.
    deadline = time.monotonic() + TTL + 15
    while time.monotonic() < deadline:
        resolved = sum(
            counter(b, "otphub_captures_total") + counter(b, "otphub_releases_total") for b in nodes
        )
        if resolved >= 30:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # room for a (wrong) second resolution to show up
    per_node = [
        (counter(b, "otphub_captures_total"), counter(b, "otphub_releases_total")) for b in nodes
    ]
    # Each activation was resolved exactly once, by one node or the other: finished when
    # its SMS arrived in time (under load a push can come after the deadline, and is then
    # kept unmatched), cancelled otherwise.
    # Both sweepers asked for the delivery-record refresh at start and then every minute;
    # one of them did it each time.
    refreshes = sum(
        counter(b, 'otphub_background_runs_total{job="delivery_scores"}') for b in nodes
    )
    assert 1 <= refreshes <= 1 + (time.monotonic() - started) // 60, refreshes
    matched = matched_activations(database_url)
    assert 1 <= matched <= 10
    assert sum(c for c, _ in per_node) == matched, per_node
    assert sum(r for _, r in per_node) == 30 - matched, per_node

    async def audited() -> audit.AuditReport:
        rt = runtime_for(database_url, SystemClock(), secret=SECRET)  # type: ignore[arg-type]
        await rt.start(migrate_schema=False)
        try:
            return await audit.audit(rt)
        finally:
            await rt.close()

    report = asyncio.run(audited())
    assert report.clean, report.problems
    assert report.totals["held"] == 0
    assert report.totals["payables"] == matched * 40


def matched_activations(url: str) -> int:
    async def count() -> int:
        rt = runtime_for(url, SystemClock(), secret=SECRET)  # type: ignore[arg-type]
        try:
            async with rt.db.read() as conn:
                query = select(func.count(func.distinct(sms.c.activation_id)))
                return int((await conn.execute(query)).scalar_one())
        finally:
            await rt.close()

    return asyncio.run(count())
