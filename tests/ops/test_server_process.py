"""A real ``otphub serve`` process: graceful shutdown keeps in-flight requests, and the
logs at debug level carry no key, no SMS text and no code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from otphub.clock import ManualClock
from otphub.services import accounts, inventory
from tests.support import runtime_for

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Deployment:
    def __init__(self, url: str) -> None:
        self.url = url
        self.env = {
            **os.environ,
            "OTPHUB_DATABASE_URL": url,
            "OTPHUB_SECRET": "process-test-secret",
            "OTPHUB_LOG_LEVEL": "debug",
            "OTPHUB_LOG_REQUESTS": "all",
            "OTPHUB_EARLY_CANCEL": "0",
        }

    def seed(self) -> tuple[int, str, int, str]:
        async def run() -> tuple[int, str, int, str]:
            rt = runtime_for(self.url, ManualClock(int(time.time())), secret="process-test-secret")
            await rt.start(migrate_schema=False)
            try:
                provider = await accounts.add_provider(rt, name="rack")
                await inventory.set_offer(
                    rt, provider_id=provider.id, service="tg", country_id=0, price=50
                )
                await inventory.add_numbers(
                    rt, provider_id=provider.id, country_id=0, phones=["79000000001", "79000000002"]
                )
                customer = await accounts.add_customer(rt, name="c", balance=1000)
                return customer.id, customer.api_key, provider.id, provider.key
            finally:
                await rt.close()

        return asyncio.run(run())


Served = tuple[Deployment, "subprocess.Popen[bytes]", str, Path]


def start_server(
    deployment: Deployment, tmp_path: Path, **settings: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``otphub serve`` with the deployment's environment plus ``settings``; waits until it
    answers /healthz."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "otphub"), "serve", "--port", str(port)],
            env={**deployment.env, **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError(log_path.read_text())
    return process, base, log_path


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture
def server(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[Deployment, subprocess.Popen[bytes], str, Path]]:
    deployment = Deployment(database_url)
    process, base, log_path = start_server(deployment, tmp_path)
    yield deployment, process, base, log_path
    stop_server(process)


def test_graceful_shutdown_finishes_in_flight_requests(server: Served, backend: str) -> None:
    deployment, process, base, log_path = server
    customer_id, key, _, _ = deployment.seed()
    api = f"{base}/stubs/handler_api.php"
    # Hold the database so that a purchase must wait inside the server.
    blocker = Blocker(deployment.url, backend, customer_id)
    blocker.hold()
    try:
        with httpx.Client(timeout=30) as client:
            import threading

            answers: list[str] = []

            def buy() -> None:
                answers.append(
                    client.get(
                        api, params={"api_key": key, "action": "getNumber", "service": "tg"}
                    ).text
                )

            thread = threading.Thread(target=buy)
            thread.start()
            time.sleep(0.5)  # the purchase is now waiting for the database
            sigterm_at = time.time()
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None, "the server must wait for the request in flight"
            # Not committed after SIGTERM, so not before either: the purchase was waiting.
            assert answers == [], f"the purchase was answered before SIGTERM: {answers}"
            assert activations_stored(deployment.url, backend) == 0, (
                "the purchase had committed before SIGTERM: this test would prove nothing"
            )
            blocker.release()
            thread.join(timeout=20)
        assert len(answers) == 1 and answers[0].startswith("ACCESS_NUMBER:"), answers
        assert activations_stored(deployment.url, backend) == 1
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        blocker.release()
    # The server's own account: the purchase began before SIGTERM and was answered after it.
    began, answered = purchase_handled(log_path.read_text())
    assert began < sigterm_at < answered, (
        f"purchase handled from {began:.3f} to {answered:.3f}, SIGTERM at {sigterm_at:.3f}"
    )


def purchase_handled(logs: str) -> tuple[float, float]:
    """When the server began and answered the one getNumber, in Unix time, from its request
    log line (OTPHUB_LOG_REQUESTS=all): the line's time is the answer's, ``ms`` its duration."""
    from datetime import datetime

    handled: list[tuple[float, float]] = []
    for text in logs.splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line.get("event") == "request" and line.get("action") == "getNumber":
                answered = datetime.fromisoformat(line["timestamp"]).timestamp()
                handled.append((answered - float(line["ms"]) / 1000, answered))
    assert len(handled) == 1, handled
    return handled[0]


def activations_stored(url: str, backend: str) -> int:
    """Committed activations, read beside the server (SQLite's WAL lets a reader in while
    the blocker holds the write lock)."""
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(conn.execute("SELECT COUNT(*) FROM activations").fetchone()[0])
        finally:
            conn.close()

    async def count() -> int:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT COUNT(*) FROM activations"))
        finally:
            await conn.close()

    return asyncio.run(count())


class Blocker:
    """Keeps the customer's purchase waiting: SQLite's write lock, or PostgreSQL's row lock
    on the customer's wallet."""

    def __init__(self, url: str, backend: str, customer_id: int) -> None:
        self.url, self.backend, self.customer_id = url, backend, customer_id
        self._conn: object = None

    def hold(self) -> None:
        if self.backend == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            self._conn = conn
            return
        import threading

        ready = threading.Event()
        self._release = threading.Event()

        def lock_wallet() -> None:
            import asyncpg

            async def run() -> None:
                conn = await asyncpg.connect(self.url)
                async with conn.transaction():
                    await conn.execute(
                        "SELECT 1 FROM accounts WHERE id = (SELECT account_id FROM customers "
                        "WHERE id = $1) FOR UPDATE",
                        self.customer_id,
                    )
                    ready.set()
                    await asyncio.to_thread(self._release.wait)
                await conn.close()

            asyncio.run(run())

        self._thread = threading.Thread(target=lock_wallet)
        self._thread.start()
        ready.wait(10)

    def release(self) -> None:
        if self.backend == "sqlite":
            if self._conn is not None:
                self._conn.rollback()  # type: ignore[attr-defined]
                self._conn.close()  # type: ignore[attr-defined]
                self._conn = None
            return
        self._release.set()
        self._thread.join(timeout=10)


def test_logs_at_debug_level_carry_no_secret(
    server: Served,
) -> None:
    deployment, process, base, log_path = server
    _, key, _, provider_key = deployment.seed()
    api = f"{base}/stubs/handler_api.php"
    text = "Your Telegram code: 48213. Do not share it"
    with httpx.Client(timeout=10) as client:
        bought = client.get(api, params={"api_key": key, "action": "getNumber", "service": "tg"})
        _, activation_id, phone = bought.text.split(":")
        pushed = client.post(
            f"{base}/agent/api/sms",
            json={
                "action": "PUSH_SMS",
                "key": provider_key,
                "smsId": 77,
                "phone": int(phone),
                "phoneFrom": "Telegram",
                "text": text,
            },
        )
        assert pushed.json() == {"status": "SUCCESS"}
        for action, extra in [
            ("getStatus", {}),
            ("getStatusV2", {}),
            ("getFullSms", {}),
            ("getActiveActivations", {}),
            ("setStatus", {"status": "6"}),
            ("getHistory", {}),
        ]:
            client.get(api, params={"api_key": key, "action": action, "id": activation_id, **extra})
        # Failures are logged too: a wrong key, a wrong provider key, a post to a
        # form with the key in the body.
        client.get(api, params={"api_key": key[:-1] + "x", "action": "getBalance"})
        client.post(
            f"{base}/agent/api/sms",
            json={
                "action": "PUSH_SMS",
                "key": provider_key[:-1],
                "smsId": 1,
                "phone": 1,
                "text": text,
            },
        )
        client.post(api, data={"api_key": key, "action": "getBalance"})
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    logs = log_path.read_text()
    assert '"event": "request"' in logs, "requests are logged by the project itself"
    assert '"level": "debug"' in logs, "the server ran at debug level"
    for secret in (key, provider_key, key[:-1], provider_key[:-1], text, "48213"):
        assert secret not in logs, f"{secret!r} leaked into the logs"
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every structured line is JSON


# ---------------------------------------------------------------- clients on the internet

Serve = Callable[..., str]
# How long a test waits for the server to act; far above every deadline the tests set, so
# that a server without the deadline fails the test instead of hanging it.
PATIENCE = 15.0


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Serve]:
    """Starts ``otphub serve`` with extra settings (``OTPHUB_...="..."``); its base URL."""
    deployment = Deployment(database_url)
    started: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> str:
        process, base, _log = start_server(deployment, tmp_path, **settings)
        started.append(process)
        return base

    yield start
    for process in started:
        stop_server(process)


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def closed_by_server(sock: socket.socket) -> bytes:
    """Waits (at most PATIENCE) for the server to close; what it sent before. A timeout
    (the server kept the connection open) raises."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_headers_sent_too_slowly_or_never_lose_the_connection(serve: Serve) -> None:
    base = serve(OTPHUB_HEADER_TIMEOUT="0.5")
    # A new connection that sends nothing.
    with connect(base) as idle:
        assert closed_by_server(idle) == b""
    # Headers trickled a byte every 0.1 s: 400 bytes would take 40 s.
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 400
    with connect(base) as trickling:
        trickling.settimeout(0.1)
        received = b""
        for byte in request:
            try:
                trickling.send(bytes([byte]))
                chunk = trickling.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break  # reset by the server
            if not chunk:
                break
            received += chunk
        else:
            raise AssertionError("the server waited for the headers as long as they came")
        assert received == b""
    # Prompt clients are served as usual, and the next request on a kept-alive connection
    # gets its own deadline.
    with httpx.Client(base_url=base, timeout=PATIENCE) as client:
        assert client.get("/healthz").text == "OK"
        time.sleep(1)
        assert client.get("/healthz").text == "OK"


def test_idle_kept_alive_connections_close_after_the_keep_alive_setting(serve: Serve) -> None:
    base = serve(OTPHUB_KEEP_ALIVE_SECONDS="1")
    with connect(base) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # uvicorn's own default is 5 s: a server ignoring the setting fails here.
        sock.settimeout(3.5)
        assert closed_by_server(sock).endswith(b"\r\n\r\nOK")


def test_connections_beyond_the_limit_are_answered_503(serve: Serve) -> None:
    base = serve(OTPHUB_MAX_CONNECTIONS="3")
    others = [connect(base) for _ in range(3)]
    try:
        with httpx.Client(base_url=base, timeout=PATIENCE) as client:
            assert client.get("/healthz").status_code == 503
    finally:
        for sock in others:
            sock.close()
    with httpx.Client(base_url=base, timeout=PATIENCE) as client:
        for _ in range(100):  # the server notices the closes a moment later
            answer = client.get("/healthz", headers={"Connection": "close"})
            if answer.status_code == 200:
                break
            time.sleep(0.05)
        assert answer.status_code == 200 and answer.text == "OK"


def failed_logins(base: str, forwarded_for: str, count: int) -> list[int]:
    """Statuses of ``count`` requests with a wrong key, as if from ``forwarded_for``."""
    with httpx.Client(base_url=base, timeout=PATIENCE) as client:
        return [
            client.get(
                "/stubs/handler_api.php",
                params={"api_key": "ohc_wrong", "action": "getBalance"},
                headers={"X-Forwarded-For": forwarded_for},
            ).status_code
            for _ in range(count)
        ]


def test_forwarded_addresses_are_believed_from_trusted_proxies_only(serve: Serve) -> None:
    # Trusted (the default: a proxy on this machine): the per-address limit on failed
    # logins counts each forwarded client on its own.
    trusting = serve(OTPHUB_AUTH_FAILURES_PER_MINUTE="2")
    assert failed_logins(trusting, "127.0.0.5", 3) == [200, 200, 429]
    assert failed_logins(trusting, "127.0.0.6", 1) == [200]
    # Trusted only from another address (127.0.0.2): X-Forwarded-For is ignored, every
    # request counts for 127.0.0.1.
    distrusting = serve(OTPHUB_AUTH_FAILURES_PER_MINUTE="2", OTPHUB_FORWARDED_ALLOW_IPS="127.0.0.2")
    assert failed_logins(distrusting, "127.0.0.5", 2) == [200, 200]
    assert failed_logins(distrusting, "127.0.0.6", 1) == [429]
