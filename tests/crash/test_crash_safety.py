"""Crash safety: a real ``otphub serve`` process is killed with SIGKILL at random moments
while a mixed workload runs over HTTP, at least 20 times per database, and restarted.

After every restart: the audit is clean; everything the client saw acknowledged is there
(purchases with their phone and customer, finishes, cancels, SMS); no number is in two
live activations and the busy flags agree; no hold is both captured and released;
getNumberV2 orders and SMS that were in flight are retried as a client and an agent
would (exactly the ones committed before the kill answer ORDER_ALREADY_EXISTS, every SMS
answers SUCCESS); and activations that became overdue while the server was down, or
before, are resolved within one sweeper period.

Requests in flight at the kill get a transport error: they are "not acknowledged" and
nothing is asserted about them, except through the audit (money is conserved whatever
happened to them) and the retries above. Every other request gets its answer, and never one
that no client may see: no HTTP 5xx or other non-200 status, no ``ERROR_SQL``, no PUSH_SMS
refused, no transport error before the kill (checked after every restart).

``OTPHUB_CRASH_SEED`` replays a run's choices (the kill moments depend on timing anyway).
Run with ``pytest tests/crash -s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import text

from otphub.clock import ManualClock
from otphub.services import audit
from tests.crash.workload import Record, Workload, World, build_world
from tests.support import TEST_SECRET, runtime_for

pytestmark = pytest.mark.slow

# Kills per database and run. Every run draws a new seed (printed on failure), so the kill
# points differ from run to run; 8 keeps both databases' runs near 40 s each on a 2-core
# machine. OTPHUB_CRASH_KILLS=50 for a deeper run.
KILLS = int(os.environ.get("OTPHUB_CRASH_KILLS", "8"))
TTL = 4  # seconds an activation lives: many expire during the run
SWEEP_INTERVAL = 0.5
SETTLE = 1.5  # after a restart: one sweeper period and a margin
WORKLOAD_SECONDS = (0.3, 1.5)  # how long the workload runs before the kill
LIVE = ("waiting", "code", "retry")
LIVE_SQL = "('waiting', 'code', 'retry')"

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- the server process


class Server:
    """``python -m otphub serve`` on a fresh port at every start; killed with SIGKILL."""

    def __init__(self, url: str, backend: str, workdir: Path, log: IO[bytes]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTPHUB_")}
        env.update(
            OTPHUB_DATABASE_URL=url,
            OTPHUB_SECRET=TEST_SECRET,
            OTPHUB_RATE_LIMIT="0",
            OTPHUB_ACTIVATION_TTL=str(TTL),
            OTPHUB_EARLY_CANCEL="0",
            OTPHUB_SWEEP_INTERVAL=str(SWEEP_INTERVAL),
            OTPHUB_LOG_LEVEL="warning",
            # Each matched SMS writes a webhook message, each capture may pay a referrer:
            # both in the transaction that the kills interrupt.
            OTPHUB_WEBHOOK_ALLOW_PRIVATE="true",
            OTPHUB_REFERRAL_SHARE="10",
        )
        if backend == "sqlite":
            # The setting documented for operators who must survive power loss.
            env["OTPHUB_SQLITE_SYNCHRONOUS"] = "FULL"
        self.env = env
        self.workdir = workdir
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.base = ""
        self.start_seconds: list[float] = []

    async def start(self) -> None:
        for _ in range(3):
            if await self._start():
                return
        raise AssertionError(f"no free port for the server after 3 tries{self.log_tail()}")

    async def _start(self) -> bool:
        """Start on a free port and wait for /healthz; False only when another process took
        the port in the meantime (any other failure to start is the test's failure)."""
        assert self.proc is None or self.proc.returncode is not None
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log_from = self.log_size()
        began = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "otphub",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=self.workdir,  # no stray .env
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        async with httpx.AsyncClient(base_url=self.base, timeout=1) as client:
            while time.monotonic() - began < 30:
                if self.proc.returncode is not None:
                    if "address already in use" in self.log_text(log_from):
                        return False
                    raise AssertionError(
                        f"the server exited with {self.proc.returncode} at start{self.log_tail()}"
                    )
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        self.start_seconds.append(time.monotonic() - began)
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"the server was not healthy 30 s after its start{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, to this process only (uvicorn with one worker serves in-process)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()

    async def reap(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        assert code == -signal.SIGKILL, f"the server exited with {code} before the kill"

    async def stop(self) -> None:
        """A graceful stop (SIGTERM), as an operator would do at the end."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise AssertionError("the server did not stop on SIGTERM within 20 s") from None

    async def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def log_size(self) -> int:
        self.log.flush()
        return os.path.getsize(self.log.name)

    def log_text(self, start: int = 0) -> str:
        self.log.flush()
        with Path(self.log.name).open("rb") as written:
            written.seek(start)
            return written.read().decode(errors="replace")

    def log_tail(self) -> str:
        lines = self.log_text().splitlines()
        return "\n--- server log (tail) ---\n" + "\n".join(lines[-40:])


# ---------------------------------------------------------------- reading the database


class Checker:
    """Reads the database directly (its own engine) and checks the invariants."""

    def __init__(self, url: str, backend: str) -> None:
        self.rt = runtime_for(url, ManualClock())
        self.is_sqlite = backend == "sqlite"
        self.verified = 0  # acknowledged items found intact, summed over every check

    async def close(self) -> None:
        await self.rt.close()

    async def rows(self, statement: str, **params: Any) -> list[Any]:
        async with self.rt.db.read() as conn:
            return list((await conn.execute(text(statement), params)).all())

    async def committed(self) -> tuple[set[tuple[int, str]], set[tuple[int, int]]]:
        """(customer, orderId) of every activation bought with an orderId, and (provider,
        smsId) of every stored SMS."""
        orders = await self.rows(
            "SELECT customer_id, order_id FROM activations WHERE order_id IS NOT NULL"
        )
        stored = await self.rows("SELECT provider_id, provider_sms_id FROM sms")
        return (
            {(int(c), str(o)) for c, o in orders},
            {(int(p), int(s)) for p, s in stored},
        )

    async def check(self, record: Record) -> None:
        problems: list[str] = []

        report = await audit.audit(self.rt)
        problems += [f"audit: {p}" for p in report.problems]

        if self.is_sqlite:
            result = await self.rows("PRAGMA integrity_check")
            if [tuple(r) for r in result] != [("ok",)]:
                problems.append(f"sqlite integrity_check: {result[:5]}")

        # Every acknowledged purchase, with its phone, customer and orderId.
        stored = {
            int(r.id): r
            for r in await self.rows(
                "SELECT id, customer_id, phone, order_id, state FROM activations"
            )
        }
        for bought in record.purchases.values():
            row = stored.get(bought.id)
            if row is None:
                problems.append(f"acknowledged purchase {bought.id} ({bought.phone}) is lost")
            elif (int(row.customer_id), str(row.phone), row.order_id) != (
                bought.buyer.id,
                bought.phone,
                bought.order_id,
            ):
                problems.append(
                    f"acknowledged purchase {bought.id} changed: stored customer "
                    f"{row.customer_id} phone {row.phone} order {row.order_id}, acknowledged "
                    f"customer {bought.buyer.id} phone {bought.phone} order {bought.order_id}"
                )
        for ids, state in ((record.finished, "finished"), (record.cancelled, "cancelled")):
            for activation_id in sorted(ids):
                row = stored.get(activation_id)
                if row is None or row.state != state:
                    found = None if row is None else row.state
                    problems.append(f"acknowledged {state} activation {activation_id} is {found}")

        # Every acknowledged SMS, stored once, with its phone and text.
        sms_rows: dict[tuple[int, int], list[Any]] = {}
        for r in await self.rows("SELECT provider_id, provider_sms_id, phone, text FROM sms"):
            sms_rows.setdefault((int(r.provider_id), int(r.provider_sms_id)), []).append(r)
        for key, (phone, body) in record.sms.items():
            found = sms_rows.get(key, [])
            if len(found) != 1 or (str(found[0].phone), found[0].text) != (phone, body):
                shown = [(r.phone, r.text) for r in found]
                problems.append(f"acknowledged SMS {key} ({phone}, {body!r}) stored as {shown}")

        # No number in two live activations; the busy flags agree.
        twice = await self.rows(
            f"SELECT number_id, COUNT(*) AS live FROM activations WHERE state IN {LIVE_SQL} "
            "GROUP BY number_id HAVING COUNT(*) > 1"
        )
        problems += [f"number {r.number_id} is in {r.live} live activations" for r in twice]
        numbers = await self.rows(
            "SELECT n.id, n.in_use, (SELECT COUNT(*) FROM activations a WHERE a.number_id = n.id"
            f" AND a.state IN {LIVE_SQL}) AS live FROM numbers n"
        )
        problems += [
            f"number {r.id}: in_use={r.in_use} with {r.live} live activations"
            for r in numbers
            if bool(r.in_use) != (int(r.live) == 1)
        ]

        # No hold both captured and released (nor resolved twice either way).
        twice_resolved = await self.rows(
            "SELECT resolves_id, COUNT(*) AS n FROM journal WHERE kind IN ('capture', 'release')"
            " GROUP BY resolves_id HAVING COUNT(*) > 1"
        )
        problems += [f"hold {r.resolves_id} resolved {r.n} times" for r in twice_resolved]
        both = await self.rows(
            "SELECT c.resolves_id FROM journal c JOIN journal r ON r.resolves_id = c.resolves_id"
            " AND r.kind = 'release' WHERE c.kind = 'capture'"
        )
        problems += [f"hold {r.resolves_id} both captured and released" for r in both]

        # Every SMS matched to an activation has its webhook message (each buyer has one
        # URL), written in the same transaction: a kill cannot leave one without the other.
        unsent = await self.rows(
            "SELECT s.id FROM sms s JOIN webhooks w ON w.customer_id = "
            "(SELECT a.customer_id FROM activations a WHERE a.id = s.activation_id) "
            "WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = "
            "'webhook:' || w.id || ':' || s.id)"
        )
        problems += [f"matched SMS {r.id} has no webhook message" for r in unsent]
        # Every finished activation that names another buyer's code paid its referrer once.
        unpaid = await self.rows(
            "SELECT a.id FROM activations a JOIN customers c ON c.referral_code = a.ref "
            "AND c.id <> a.customer_id WHERE a.state = 'finished' AND (SELECT COUNT(*) FROM "
            "journal j WHERE j.kind = 'referral' AND j.activation_id = a.id) <> 1"
        )
        problems += [f"finished activation {r.id}: not one referral payment" for r in unpaid]

        assert not problems, "\n".join(problems[:40])
        self.verified += (
            len(record.purchases) + len(record.finished) + len(record.cancelled) + len(record.sms)
        )

    async def overdue_live(self) -> list[Any]:
        """Live activations whose deadline passed more than a second ago."""
        return await self.rows(
            f"SELECT id, state, expires_at FROM activations WHERE state IN {LIVE_SQL}"
            " AND expires_at < :cutoff",
            cutoff=int(time.time()) - 1,
        )

    async def totals(self) -> dict[str, int]:
        states = Counter(
            {
                str(r.state): int(r.n)
                for r in await self.rows("SELECT state, COUNT(*) AS n FROM activations GROUP BY 1")
            }
        )
        expired = await self.rows(
            "SELECT COUNT(*) FROM activations WHERE ended_at IS NOT NULL AND ended_at >= expires_at"
        )
        sms = await self.rows(
            "SELECT COUNT(*), COUNT(activation_id) FROM sms",
        )
        return {
            "db_activations": sum(states.values()),
            "db_finished": states["finished"],
            "db_cancelled": states["cancelled"],
            "db_live": sum(states[s] for s in LIVE),
            "db_expired": int(expired[0][0]),
            "db_sms": int(sms[0][0]),
            "db_sms_matched": int(sms[0][1]),
        }


# ---------------------------------------------------------------- the run


async def cli_audit(server: Server) -> str:
    """``otphub audit`` as an operator runs it, with the server's environment."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "otphub",
        "audit",
        cwd=server.workdir,
        env=server.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"otphub audit failed: {out.decode()} {err.decode()}"
    assert "audit clean" in err.decode(), err.decode()
    return err.decode().strip().splitlines()[0]


async def crash_run(
    url: str, backend: str, workdir: Path, log: IO[bytes], seed: int
) -> dict[str, Any]:
    began = time.monotonic()
    rng = random.Random(seed)
    world: World = await build_world(url)
    record = Record()
    workload = Workload(world, record, rng, ttl=TTL)
    server = Server(url, backend, workdir, log)
    checker = Checker(url, backend)
    settle_late = 0.0
    kills = 0
    try:
        await server.start()
        while kills < KILLS:
            await workload.run(server.base, rng.uniform(*WORKLOAD_SECONDS), kill=server.kill)
            await server.reap()
            kills += 1
            await server.start()
            healthy_at = time.monotonic()

            committed_orders, committed_sms = await checker.committed()
            await workload.recover(
                server.base, committed_orders=committed_orders, committed_sms=committed_sms
            )
            await checker.check(record)
            unexpected = dict(record.unexpected)
            assert not unexpected, (
                f"answers no client may get (a kill only breaks connections): {unexpected}"
            )

            # Overdue activations are resolved within one sweeper period of the restart.
            wait = healthy_at + SETTLE - time.monotonic()
            settle_late = max(settle_late, -wait)
            await asyncio.sleep(max(wait, 0))
            overdue = await checker.overdue_live()
            assert not overdue, (
                f"live activations overdue {SETTLE} s after the restart: "
                f"{[tuple(r) for r in overdue][:10]} (now {int(time.time())})"
            )

        audit_line = await cli_audit(server)
        totals = await checker.totals()
        await server.stop()
    except AssertionError as failure:
        raise AssertionError(
            f"{failure}\n(on {backend}, after kill {kills} of {KILLS}, "
            f"OTPHUB_CRASH_SEED={seed}){server.log_tail()}"
        ) from None
    finally:
        await server.ensure_dead()
        await checker.close()

    starts = server.start_seconds
    return {
        "backend": backend,
        "seed": seed,
        "kills": kills,
        "operations_sent": record.sent,
        "interrupted_by_kill": record.interrupted,
        "purchases_acknowledged": len(record.purchases),
        "purchases_getNumber": record.count("getNumber ACCESS_NUMBER"),
        "purchases_getNumberV2": sum(1 for b in record.purchases.values() if b.order_id),
        "finishes_acknowledged": len(record.finished),
        "cancels_acknowledged": len(record.cancelled),
        "retries_acknowledged": record.count("setStatus ACCESS_RETRY_GET"),
        "sms_acknowledged": len(record.sms),
        "orders_retried": record.orders_retried,
        "orders_committed_but_unanswered": record.orders_committed_unanswered,
        "orders_rebought": record.orders_rebought,
        "sms_resent": record.sms_resent,
        "sms_committed_but_unanswered": record.sms_committed_unanswered,
        "no_numbers_answers": sum(
            n for k, n in record.answers.items() if k.endswith(" NO_NUMBERS")
        ),
        "unexpected_answers": dict(record.unexpected),
        **totals,
        "acknowledged_items_verified_intact": checker.verified,
        "audit": audit_line,
        "server_start_seconds_avg": round(sum(starts) / len(starts), 2),
        "server_start_seconds_max": round(max(starts), 2),
        "checks_late_by_max_seconds": round(settle_late, 2),
        "duration_seconds": round(time.monotonic() - began, 1),
    }


def test_sigkill_mid_workload_loses_nothing_acknowledged(
    database_url: str,
    server_processes_turn: None,
    backend: str,
    tmp_path: Path,
    record_property: Any,
) -> None:
    seed = int(os.environ.get("OTPHUB_CRASH_SEED") or random.randrange(2**32))
    with (tmp_path / "server.log").open("ab") as log:
        figures = asyncio.run(crash_run(database_url, backend, tmp_path, log, seed))
    print(f"\ncrash safety on {backend}:")
    for name, value in figures.items():
        print(f"  {name}: {value}")
        record_property(name, value)

    # The run was not vacuous: every kind of acknowledged operation happened, and kills
    # did interrupt requests in flight.
    assert figures["purchases_acknowledged"] >= 50, figures
    assert figures["finishes_acknowledged"] > 0, figures
    assert figures["cancels_acknowledged"] > 0, figures
    assert figures["sms_acknowledged"] > 0, figures
    assert figures["db_expired"] > 0, figures
    assert figures["interrupted_by_kill"] > 0, figures
