"""Two server processes on one database: an SMS pushed to one wakes a ``wait=`` request and
an event stream waiting on the other (PostgreSQL: NOTIFY; SQLite: the change rows, two
processes on one file). The measured delays are printed (``-s``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import otphub
from otphub.clock import SystemClock
from otphub.services import accounts, inventory
from tests.api.sse import Stream
from tests.concurrency.test_two_nodes import BIN, free_port
from tests.support import PG_ADMIN_URL, runtime_for

pytestmark = pytest.mark.slow
SECRET = "push-fleet-secret"
WAIT = 20


def seed(url: str) -> tuple[str, str]:
    async def run() -> tuple[str, str]:
        rt = runtime_for(url, SystemClock(), secret=SECRET)  # type: ignore[arg-type]
        await rt.start(migrate_schema=False)
        try:
            provider = await accounts.add_provider(rt, name="rack")
            await inventory.set_offer(
                rt, provider_id=provider.id, service="tg", country_id=0, price=50, payout=40
            )
            await inventory.add_numbers(
                rt, provider_id=provider.id, country_id=0, phones=["79000000001", "79000000002"]
            )
            customer = await accounts.add_customer(rt, name="c", balance=500)
            return provider.key, customer.api_key
        finally:
            await rt.close()

    return asyncio.run(run())


@pytest.fixture
def nodes(database_url: str, tmp_path: Path, server_processes_turn: None) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "OTPHUB_DATABASE_URL": database_url,
        "OTPHUB_SECRET": SECRET,
        "OTPHUB_RATE_LIMIT": "0",
        "OTPHUB_LOG_LEVEL": "warning",
        # The servers run this checkout's code, whatever the working directory.
        "PYTHONPATH": str(Path(otphub.__file__).resolve().parents[1]),
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
    try:
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
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=20)


def push(base: str, provider_key: str, phone: str, text: str, sms_id: int) -> float:
    """Push an SMS as the agent; returns the monotonic time its answer came (after commit)."""
    answer = httpx.post(
        f"{base}/agent/api/sms",
        json={
            "action": "PUSH_SMS",
            "key": provider_key,
            "smsId": sms_id,
            "phone": int(phone),
            "phoneFrom": "Service",
            "text": text,
        },
        timeout=10,
    )
    assert answer.json() == {"status": "SUCCESS"}, answer.text
    return time.monotonic()


def say(base: str, key: str, action: str, **params: str | int) -> str:
    answer = httpx.get(
        f"{base}/stubs/handler_api.php",
        params={"api_key": key, "action": action, **params},
        timeout=WAIT + 10,
    )
    return answer.text


def deliver_across(
    nodes: list[str],
    provider_key: str,
    key: str,
    activation_id: int,
    phone: str,
    code: str,
    label: str,
) -> None:
    """A getStatus wait= and an event stream wait on node 0; the SMS is pushed to node 1."""
    waiting_on, pushed_to = nodes
    stream = Stream(
        waiting_on,
        f"/api/v1/activations/{activation_id}/events",
        {"Authorization": f"Bearer {key}"},
    )
    try:
        assert stream.status == 200
        while (first := stream.next()) is not None and first.kind != "state":
            pass  # the SMS of before, then the current state
        assert first is not None
        with ThreadPoolExecutor(max_workers=1) as pool:
            started = time.monotonic()

            def long_poll() -> tuple[str, float]:
                text = say(waiting_on, key, "getStatus", id=activation_id, wait=WAIT)
                return text, time.monotonic()

            answer = pool.submit(long_poll)
            time.sleep(0.5)  # the request is waiting (its re-read is long done)
            assert not answer.done()
            pushed = push(pushed_to, provider_key, phone, f"Your code {code}", int(code))
            while (event := stream.next()) is not None and event.kind != "sms":
                pass
            streamed = time.monotonic()
            assert event is not None and event.json()["code"] == code
            text, polled = answer.result()
        assert text == f"STATUS_OK:{code}"
        assert polled - started < WAIT / 2, "answered only when the wait ran out"
        print(
            f"\n[{label}] pushed to one process, delivered on the other: "
            f"wait= {1000 * (polled - pushed):.1f} ms, event stream "
            f"{1000 * (streamed - pushed):.1f} ms after the push's answer"
        )
    finally:
        stream.close()


def test_an_sms_pushed_to_one_process_reaches_waiters_on_the_other(
    nodes: list[str], database_url: str, backend: str
) -> None:
    provider_key, key = seed(database_url)
    bought = say(nodes[0], key, "getNumber", service="tg")
    assert bought.startswith("ACCESS_NUMBER:"), bought
    _, activation_id, phone = bought.split(":")
    deliver_across(nodes, provider_key, key, int(activation_id), phone, "31337", backend)
    # And again after another SMS was asked for: each change crosses, not only the first.
    assert say(nodes[1], key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    deliver_across(nodes, provider_key, key, int(activation_id), phone, "42424", backend)
    if backend == "postgresql":
        # The LISTEN connections drop (a failover, a restart): each process reconnects and
        # its waiters look again; changes cross as before.
        dropped = asyncio.run(_terminate_listeners(database_url))
        assert dropped == 2, dropped
        time.sleep(0.5)  # the first reconnect comes after 0.1 s
        assert say(nodes[1], key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
        deliver_across(
            nodes, provider_key, key, int(activation_id), phone, "51515", "postgresql, relistened"
        )


async def _terminate_listeners(url: str) -> int:
    import asyncpg
    from sqlalchemy.engine import make_url

    target = make_url(url).database
    admin = make_url(PG_ADMIN_URL)
    conn = await asyncpg.connect(
        user=admin.username,
        password=admin.password,
        host=admin.host,
        port=admin.port,
        database=admin.database,
    )
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND query LIKE 'LISTEN%'",
            target,
        )
        return sum(1 for row in rows if row[0])
    finally:
        await conn.close()
