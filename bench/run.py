#!/usr/bin/env python3
"""OTPHub benchmark: ``make bench`` (or ``make bench SCALE=10``), or
``.venv/bin/python bench/run.py [--scale 10] [--db sqlite|postgresql|both]``.

For each database: a fresh database, ``otphub init``, realistic data loaded straight into
the tables (bench/loader.py), ``otphub audit``, then ``otphub serve --workers 1`` as a
subprocess driven by wrk (bench/lua/*.lua) through every scenario, ``otphub audit`` again,
then the two baselines (bench/baseline_app.py) on the same database. Prints a table and
writes bench/results/<date>-<db>.json and bench/results/latest.json. See bench/README.md.

Only 127.0.0.1 is ever contacted; every wrk run is bounded by its duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
RESULTS = BENCH / "results"
WORK = ROOT / "var" / "bench"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

SECRET = "otphub-bench-secret-not-for-production"
# OTPHub runs with its defaults except these two (see bench/README.md):
SERVER_OVERRIDES = {
    "OTPHUB_RATE_LIMIT": "0",  # wrk sends far more than 300 requests/s per key
    "OTPHUB_EARLY_CANCEL": "0",  # purchase + cancel cycles cancel at once
}
# Another name lets benches of several checkouts share one PostgreSQL server.
PG_DATABASE = os.environ.get("OTPHUB_BENCH_PG_DATABASE", "otphub_bench")
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", PG_DATABASE):
    sys.exit(f"bench: OTPHUB_BENCH_PG_DATABASE must be a plain identifier, not {PG_DATABASE!r}")
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _reexec_in_venv() -> None:
    """The loader imports otphub: run under the project's virtualenv."""
    try:
        import otphub  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        sys.exit("bench: otphub is not importable; run `make install` first")


_reexec_in_venv()
sys.path.insert(0, str(BENCH))

import loader  # noqa: E402

PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    script: str
    args: tuple[str, ...] = ()
    per_connection_threads: bool = False  # the script chains requests: one connection/thread
    connections: int | None = None  # None: --connections
    timeout: str = "10s"
    expected_unit: str = "req"  # what a counted operation is (cycles for purchase + cancel)
    actions: tuple[str, ...] = ()  # customer-API actions sent (for the handler timings)


OTPHUB_SCENARIOS = (
    Scenario("get_status", "getStatus", "get_status.lua", actions=("getStatus",)),
    Scenario("get_balance", "getBalance", "get_balance.lua", actions=("getBalance",)),
    Scenario(
        "get_prices_service_country",
        "getPrices service+country",
        "get_prices.lua",
        ("service_country",),
        actions=("getPrices",),
    ),
    Scenario(
        "get_prices_service",
        "getPrices service",
        "get_prices.lua",
        ("service",),
        actions=("getPrices",),
    ),
    Scenario(
        "purchase_cancel",
        "purchase+cancel",
        "purchase_cancel.lua",
        per_connection_threads=True,
        expected_unit="cycle",
        actions=("getNumber", "setStatus"),
    ),
    Scenario("sms_push", "PUSH_SMS", "sms_push.lua", ("1000000000000",)),
    Scenario(
        "mixed",
        "mixed 90/5/5",
        "mixed.lua",
        ("2000000000000",),
        per_connection_threads=True,
        actions=("getStatus", "getNumber", "setStatus", "getBalance", "getPrices"),
    ),
)
# Issue 9: purchase + cancel through a local SMSHub agent (bench/agent_app.py), run after
# the local scenarios (from then on the deployment has an agent provider). The agent's offer
# is the cheapest for its (service, country), so every purchase calls GET_NUMBER.
AGENT_TARGET = ("tg", "0", "russia")
AGENT_PURCHASE = Scenario(
    "agent_purchase_cancel",
    "purchase+cancel via agent",
    "purchase_cancel.lua",
    AGENT_TARGET[:2],
    per_connection_threads=True,
    expected_unit="cycle",
    actions=("getNumber", "setStatus"),
)
# Last: a full price list may take seconds; it runs alone, with few connections.
PRICES_FULL = Scenario(
    "get_prices_full",
    "getPrices full",
    "get_prices.lua",
    ("full",),
    connections=4,
    timeout="60s",
    actions=("getPrices",),
)
BASELINES = (
    Scenario("baseline_word", "bare word", "baseline_word.lua"),
    Scenario("baseline_db", "bare DB read+write", "baseline_db.lua"),
)
WARMUP = Scenario("warmup", "warm-up (getStatus)", "get_status.lua")


@dataclass(frozen=True)
class WaitScenario:
    """Issue 10: thousands of waiting requests on one server process (bench/waiters.py),
    SMS pushed for a sample of their activations, each code timed from the push to the
    waiter. ``servers=2``: the waiters on one server process, the pushes on another (two
    ports), so the change has to cross processes."""

    key: str
    title: str
    mode: str  # bench/waiters.py --mode
    servers: int = 1
    databases: tuple[str, ...] = ("sqlite", "postgresql")


# The status polls (no wait) on a waiting scenario's server: before the waiters come, and
# while they are held (the hot path must not get slower for them).
POLL_BEFORE = Scenario(
    "get_status_before_waiters", "getStatus, none waiting", "get_status.lua", actions=("getStatus",)
)
POLL_HOLDING = Scenario(
    "get_status_while_waiting", "getStatus, all waiting", "get_status.lua", actions=("getStatus",)
)
WAIT_SCENARIOS = (
    WaitScenario("longpoll", "getStatus wait=60", "longpoll"),
    WaitScenario("sse", "SSE events", "sse"),
    WaitScenario("longpoll_2servers", "getStatus wait=60, 2 proc", "longpoll", 2, ("postgresql",)),
    WaitScenario("sse_2servers", "SSE events, 2 proc", "sse", 2, ("postgresql",)),
)


# ---------------------------------------------------------------- processes and /proc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(database_url: str) -> dict[str, str]:
    """The environment minus any OTPHUB_* of the caller, plus the database and secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPHUB_")}
    env["OTPHUB_DATABASE_URL"] = database_url
    env["OTPHUB_SECRET"] = SECRET
    return env


def proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def postgres_backends(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``database``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres:") and f" {database} ".encode() in cmdline:
            found[int(entry.name)] = proc_cpu_seconds(int(entry.name))
    return found


class PgCpu:
    """CPU of the bench database's PostgreSQL backends during a run. Backends come and go
    (a connection pool opens and closes connections), so they are sampled every 0.25 s and
    a backend that ended counts with its last sample (a backend that lived less than 0.25 s
    is missed)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.first = postgres_backends(database)
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            for pid, cpu in postgres_backends(self.database).items():
                self.first.setdefault(pid, 0.0)
                self.last[pid] = cpu

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        for pid, cpu in postgres_backends(self.database).items():
            self.first.setdefault(pid, 0.0)
            self.last[pid] = cpu
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


async def _pg_stats(admin_url: str, database: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        row = await conn.fetchrow(
            "SELECT sessions, xact_commit, xact_rollback, blks_read, blks_hit, "
            "active_time::bigint AS active_ms FROM pg_stat_database WHERE datname = $1",
            database,
        )
        return {k: int(v or 0) for k, v in dict(row or {}).items()}
    finally:
        await conn.close()


def pg_stats(admin_url: str | None, database: str | None) -> dict[str, int]:
    if not admin_url or not database:
        return {}
    try:
        return asyncio.run(_pg_stats(admin_url, database))
    except Exception:
        return {}


def system_busy_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def vm_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Server:
    """A server subprocess that we started, and stop, by its pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=WORK, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.proc.pid

    def wait_ready(self, url: str, timeout: float = 120.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=2) as answer,
            ):
                if answer.status == 200:
                    return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(p) for p in path.read_text().split()]
        return []

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

    def log_size(self) -> int:
        self._log.flush()
        return self.log_path.stat().st_size

    def tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- wrk


@dataclass
class Run:
    key: str
    title: str
    wrk: str
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    ops_per_s: float | None = None  # cycles/s for purchase + cancel
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    ok: int = 0
    bad: int = 0
    bad_sample: str = ""
    socket_errors: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    server_cpu_pct: float | None = None
    db_cpu_pct: float | None = None
    wrk_cpu_pct: float | None = None
    other_cpu_pct: float | None = None  # the rest of the machine: other processes
    waited_for_quiet_s: float = 0.0
    # PostgreSQL: pg_stat_database deltas (sessions = connections opened during the run)
    db_stats: dict[str, int] = field(default_factory=dict)
    # time inside OTPHub's handler per action, from its request log lines ("ms")
    server_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    note: str = ""
    error: str = ""


@dataclass
class Context:
    """What every wrk run of one server needs."""

    base_url: str
    data_dir: Path
    duration: int
    connections: int
    server: Server
    pg_database: str | None
    quiet: Quiet
    pg_admin_url: str | None = None
    profile_dir: Path | None = None


class Quiet:
    """Waits, before each run, until the rest of the machine is nearly idle: other
    processes (a test suite, a build) would take CPU from the server and the database.
    Bounded by a budget for the whole benchmark; what is left busy is reported (oth%)."""

    def __init__(self, budget_s: float, per_run_s: float = 15.0, threshold_pct: float = 25.0):
        self.budget = budget_s
        self.per_run = per_run_s
        self.threshold = threshold_pct
        self.waited = 0.0

    def busy_pct(self, window: float = 0.5) -> float:
        before = system_busy_seconds()
        time.sleep(window)
        return 100 * (system_busy_seconds() - before) / window

    def wait(self) -> float:
        """Seconds waited; every call samples the machine for half a second at least."""
        started = time.monotonic()
        while (
            self.waited + (time.monotonic() - started) < self.budget
            and time.monotonic() - started < self.per_run
        ):
            if self.busy_pct() <= self.threshold:
                break
            time.sleep(1.0)
        spent = time.monotonic() - started
        self.waited += spent
        return spent


def server_timings(log_path: Path, offset: int) -> dict[str, dict[str, float]]:
    """p50/p99 of the "ms" of OTPHub's request log lines written since ``offset``."""
    per_action: dict[str, list[float]] = {}
    with log_path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.startswith(b"{") or b'"ms"' not in raw:
                continue
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                per_action.setdefault(str(line.get("action")), []).append(float(line["ms"]))
    out = {}
    for action, values in per_action.items():
        values.sort()
        out[action] = {
            "n": len(values),
            "p50": values[len(values) // 2],
            "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
        }
    return out


def start_profiler(ctx: Context, name: str) -> tuple[subprocess.Popen[bytes], Path] | None:
    if ctx.profile_dir is None:
        return None
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY")
    if not spy:
        return None
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    out = ctx.profile_dir / f"{name}.txt"
    argv = [spy, "record", "--pid", str(ctx.server.pid), "--duration", str(ctx.duration)]
    argv += ["--rate", "250", "--format", "raw", "--nonblocking", "--output", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample shares per function, from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r" \(/.*?/(site-packages|src)/", " (", f) for f in stack.split(";")]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda item: -item[1])[:top]
        return [(frame, round(100 * n / total, 1)) for frame, n in ranked]

    return {"samples": total, "file": str(path), "self": share(own), "inclusive": share(inclusive)}


def run_wrk(ctx: Context, scenario: Scenario) -> Run:
    conns = scenario.connections or ctx.connections
    threads = conns if scenario.per_connection_threads else 1
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{conns}",
        f"-d{ctx.duration}s",
        f"--timeout={scenario.timeout}",
        "-s",
        str(LUA / scenario.script),
        ctx.base_url,
        "--",
        str(ctx.data_dir),
        *scenario.args,
    ]
    shown = f"-t{threads} -c{conns} -d{ctx.duration}s"
    run = Run(key=scenario.key, title=scenario.title, wrk=shown)
    run.waited_for_quiet_s = round(ctx.quiet.wait(), 1)
    pid = ctx.server.pid
    log_offset = ctx.server.log_size()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats0 = pg_stats(ctx.pg_admin_url, ctx.pg_database)
    cpu0 = proc_cpu_seconds(pid)
    pg_sampler = PgCpu(ctx.pg_database) if ctx.pg_database else None
    sys0 = system_busy_seconds()
    wall0 = time.monotonic()
    profiler = start_profiler(ctx, f"{ctx.server.name}-{scenario.key}")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=ctx.duration + 60, cwd=BENCH, check=False
        )
    except subprocess.TimeoutExpired:
        run.error = "wrk did not finish in time"
        return run
    finally:
        if profiler is not None:
            profiler[0].wait(timeout=ctx.duration + 30)
        pg_cpu = pg_sampler.stop() if pg_sampler is not None else 0.0
    wall = time.monotonic() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = proc_cpu_seconds(pid) - cpu0
    stats1 = pg_stats(ctx.pg_admin_url, ctx.pg_database)
    run.db_stats = {k: stats1[k] - stats0[k] for k in stats1 if k in stats0}
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    busy = system_busy_seconds() - sys0
    run.server_cpu_pct = 100 * server_cpu / wall
    run.db_cpu_pct = 100 * pg_cpu / wall if ctx.pg_database else None
    run.wrk_cpu_pct = 100 * wrk_cpu / wall
    run.other_cpu_pct = max(0.0, 100 * (busy - server_cpu - pg_cpu - wrk_cpu) / wall)
    if profiler is not None:
        run.note = "PROFILED (py-spy): slower than unprofiled"
        with contextlib.suppress(OSError):
            run.profile = summarize_profile(profiler[1])
    run.server_ms = {
        action: timing
        for action, timing in server_timings(ctx.server.log_path, log_offset).items()
        if action in scenario.actions
    }
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        run.error = f"wrk exit {done.returncode}: {(done.stderr or done.stdout).strip()[:400]}"
        return run
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    run.requests = int(data["requests"])
    run.seconds = data["duration_us"] / 1e6
    run.rps = run.requests / run.seconds if run.seconds else 0.0
    lat = data["latency_us"]
    run.p50_ms, run.p90_ms, run.p99_ms, run.max_ms = (
        lat["p50"] / 1000,
        lat["p90"] / 1000,
        lat["p99"] / 1000,
        lat["max"] / 1000,
    )
    counters = {k: int(v) for k, v in data["counters"].items()}
    run.ok, run.bad = counters.pop("n_ok", 0), counters.pop("n_bad", 0)
    run.counters = {k.removeprefix("n_"): v for k, v in counters.items()}
    run.bad_sample = data["bad_sample"]
    run.socket_errors = {k: int(v) for k, v in data["errors"].items() if int(v)}
    if scenario.expected_unit == "cycle":
        run.ops_per_s = run.counters.get("cancel", 0) / run.seconds if run.seconds else 0.0
    return run


def probe_ms(url: str, timeout: float) -> float | None:
    """One request's latency in ms; ``None`` past ``timeout`` seconds."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
    except OSError:
        return None
    return (time.perf_counter() - started) * 1000


def run_prices_full(ctx: Context) -> Run:
    """A full price list can take seconds: time one request first. Fast enough: wrk with
    few connections; too slow for that: a few sequential requests, reported as such."""
    key = (ctx.data_dir / "customers.tsv").read_text().split()[0]
    url = f"{ctx.base_url}/stubs/handler_api.php?api_key={key}&action=getPrices"
    waited = ctx.quiet.wait()
    first = probe_ms(url, timeout=120)
    if first is None:
        return Run(PRICES_FULL.key, PRICES_FULL.title, "-", error="one request took over 120 s")
    if first <= 2000:
        run = run_wrk(ctx, PRICES_FULL)
        run.note = f"first request {first:.0f} ms"
        return run
    pid = ctx.server.pid
    log_offset = ctx.server.log_size()
    cpu0 = proc_cpu_seconds(pid)
    wall0 = time.monotonic()
    samples = [first]
    while len(samples) < 3 and sum(samples) < 60_000:
        ms = probe_ms(url, timeout=120)
        if ms is None:
            break
        samples.append(ms)
    wall = time.monotonic() - wall0
    samples.sort()
    run = Run(PRICES_FULL.key, PRICES_FULL.title, f"{len(samples)} sequential")
    run.waited_for_quiet_s = round(waited, 1)
    run.requests = run.ok = len(samples)
    run.seconds = sum(samples) / 1000
    run.rps = 1000 / (sum(samples) / len(samples))
    run.p50_ms = samples[len(samples) // 2]
    run.max_ms = samples[-1]
    run.server_cpu_pct = 100 * (proc_cpu_seconds(pid) - cpu0) / wall if wall > 0 else None
    run.server_ms = {
        k: v for k, v in server_timings(ctx.server.log_path, log_offset).items() if k == "getPrices"
    }
    run.note = "too slow for wrk: sequential requests (p50 = median, no p99)"
    return run


# ---------------------------------------------------------------- databases


def loopback_only(url: str) -> None:
    host = urlsplit(url.replace("postgresql+asyncpg", "postgresql")).hostname or ""
    if host not in LOOPBACK:
        sys.exit(f"bench: refusing database host {host!r}: the benchmark only uses 127.0.0.1")


def pg_urls(admin_url: str) -> tuple[str, str]:
    parts = urlsplit(admin_url)
    bench = urlunsplit((parts.scheme, parts.netloc, f"/{PG_DATABASE}", "", ""))
    return admin_url, bench


async def _pg_admin(admin_url: str, *statements: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for statement in statements:
            await conn.execute(statement)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def pg_recreate(admin_url: str) -> str:
    return asyncio.run(
        _pg_admin(
            admin_url,
            f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)",
            f"CREATE DATABASE {PG_DATABASE}",
        )
    )


def pg_drop(admin_url: str) -> None:
    asyncio.run(_pg_admin(admin_url, f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))


def sqlite_files(path: Path) -> list[Path]:
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def otphub_cli(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> tuple[bool, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-m", "otphub", *args],
        cwd=WORK,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = (done.stderr + done.stdout).strip()
    return done.returncode == 0, output, time.monotonic() - started


# ---------------------------------------------------------------- one database


def bench_database(
    db: str, url: str, args: argparse.Namespace, shape: loader.Shape, quiet: Quiet
) -> dict[str, Any]:
    profile_dir = args.results / "profiles" / f"{args.stamp}-{db}" if args.profile else None
    result: dict[str, Any] = {"database": db, "phases_s": {}, "runs": [], "baselines": []}
    phases = result["phases_s"]
    pg_database = PG_DATABASE if db == "postgresql" else None
    env = clean_env(url)
    t0 = time.monotonic()

    ok, output, seconds = otphub_cli(["init"], env)
    phases["init"] = round(seconds, 2)
    if not ok:
        raise RuntimeError(f"otphub init failed: {output}")
    log(f"{db}: otphub init in {seconds:.1f} s; loading data (scale {shape.scale})")
    report = loader.load(url, secret=SECRET.encode(), shape=shape)
    phases["load"] = round(report.seconds, 2)
    result["rows"] = report.counts
    data_dir = WORK / f"data-{db}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    loader.write_data_files(report.generated, data_dir, slices=args.connections)
    log(f"{db}: loaded {report.counts} in {report.seconds:.1f} s")

    ok, output, seconds = otphub_cli(["audit"], env)
    phases["audit_after_load"] = round(seconds, 2)
    result["audit_after_load"] = {"clean": ok, "output": output[-2000:]}
    log(f"{db}: audit after load: {'clean' if ok else 'FAILED'} ({seconds:.1f} s)")
    if not ok:
        raise RuntimeError(f"the loaded data does not pass otphub audit:\n{output}")

    # ---- OTPHub
    result["src"] = src_state()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_env = {**env, **SERVER_OVERRIDES, **args.server_env}
    server = Server(
        "otphub",
        [PYTHON, "-m", "otphub", "serve", "--port", str(port), "--workers", "1"],
        server_env,
        WORK / f"server-{db}.log",
    )
    try:
        phases["server_start"] = round(server.wait_ready(f"{base_url}/healthz"), 2)
        result["server_pid_children"] = server.children()
        result["rss_after_start_mb"] = round((vm_kb(server.pid, "VmRSS") or 0) / 1024, 1)
        ctx = Context(
            base_url=base_url,
            data_dir=data_dir,
            duration=args.warmup,
            connections=args.connections,
            server=server,
            pg_database=pg_database,
            pg_admin_url=args.postgres_url if pg_database else None,
            quiet=quiet,
        )
        result["warmup"] = asdict(run_wrk(ctx, WARMUP))
        ctx.duration = args.duration
        ctx.profile_dir = profile_dir
        for scenario in OTPHUB_SCENARIOS:
            if args.only and scenario.key not in args.only:
                continue
            run = run_wrk(ctx, scenario)
            result["runs"].append(asdict(run))
            log(f"{db}: {summary_line(run)}")
        if not args.only or AGENT_PURCHASE.key in args.only:
            run = run_agent_purchase(ctx, env, data_dir)
            result["runs"].append(asdict(run))
            log(f"{db}: {summary_line(run)}")
        if not args.only or PRICES_FULL.key in args.only:
            run = run_prices_full(ctx)
            result["runs"].append(asdict(run))
            log(f"{db}: {summary_line(run)}")
        result["peak_rss_mb"] = round((vm_kb(server.pid, "VmHWM") or 0) / 1024, 1)
        result["rss_end_mb"] = round((vm_kb(server.pid, "VmRSS") or 0) / 1024, 1)
    finally:
        result["server_exit"] = server.stop()
        if src_state()["tree_sha256"] != result["src"]["tree_sha256"]:
            result["src_changed_during_run"] = True
            log(f"!!! {db}: src/ changed while OTPHub was measured: the numbers mix two versions")
    server_log = server.log_path.read_text(errors="replace")
    result["server_log"] = {
        "path": str(server.log_path.relative_to(ROOT)),
        "bytes": len(server_log.encode()),
        "request_lines": server_log.count('"event": "request"'),
        "errors": len(re.findall(r'"level": "(?:error|critical)"', server_log)),
        "tracebacks": server_log.count("Traceback"),
    }

    waits = [
        w
        for w in WAIT_SCENARIOS
        if db in w.databases and (not args.only or w.key in args.only) and args.waiters > 0
    ]
    if waits:
        t_waits = time.monotonic()
        result["waits"] = [
            run_waits(w, db, {**env, **SERVER_OVERRIDES, **args.server_env}, data_dir, args, quiet)
            for w in waits
        ]
        phases["waits"] = round(time.monotonic() - t_waits, 1)

    ok, output, seconds = otphub_cli(["audit"], env)
    phases["audit_after_run"] = round(seconds, 2)
    result["audit_after_run"] = {"clean": ok, "output": output[-2000:]}
    log(f"{db}: audit after the run: {'clean' if ok else 'FAILED'} ({seconds:.1f} s)")

    # ---- baselines, same database, same stack
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    baseline = Server(
        "baseline",
        [PYTHON, str(BENCH / "baseline_app.py"), "--port", str(port), "--database-url", url],
        env,
        WORK / f"baseline-{db}.log",
    )
    try:
        baseline.wait_ready(f"{base_url}/word")
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{base_url}/info", timeout=5) as answer,
        ):
            result["baseline_info"] = json.loads(answer.read())
        ctx = Context(
            base_url=base_url,
            data_dir=data_dir,
            duration=args.duration,
            connections=args.connections,
            server=baseline,
            pg_database=pg_database,
            pg_admin_url=args.postgres_url if pg_database else None,
            quiet=quiet,
        )
        for scenario in BASELINES:
            run = run_wrk(ctx, scenario)
            result["baselines"].append(asdict(run))
            log(f"{db}: {summary_line(run)}")
        result["baseline_peak_rss_mb"] = round((vm_kb(baseline.pid, "VmHWM") or 0) / 1024, 1)
    finally:
        baseline.stop()
    phases["total"] = round(time.monotonic() - t0, 1)
    return result


def run_waits(
    scenario: WaitScenario,
    db: str,
    server_env: dict[str, str],
    data_dir: Path,
    args: argparse.Namespace,
    quiet: Quiet,
) -> dict[str, Any]:
    """Fresh server process(es) for one waiting scenario (their peak RSS is then the
    scenario's), the load client bench/waiters.py in a process of its own, then stop."""
    out: dict[str, Any] = {"key": scenario.key, "title": scenario.title, "error": ""}
    count = min(args.waiters, len((data_dir / "status.tsv").read_text().splitlines()))
    # uvicorn's limit_concurrency answers 503 beyond it: room for every waiter and more.
    env = {**server_env, "OTPHUB_MAX_CONNECTIONS": str(count + 2000)}
    out["settings"] = {"OTPHUB_MAX_CONNECTIONS": env["OTPHUB_MAX_CONNECTIONS"]}
    servers: list[Server] = []
    urls: list[str] = []
    try:
        for index in range(scenario.servers):
            port = free_port()
            servers.append(
                Server(
                    f"otphub-{scenario.key}-{index + 1}",
                    [PYTHON, "-m", "otphub", "serve", "--port", str(port), "--workers", "1"],
                    env,
                    WORK / f"server-{db}-{scenario.key}-{index + 1}.log",
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for server, url in zip(servers, urls, strict=True):
            server.wait_ready(f"{url}/healthz")
        out["rss_after_start_mb"] = [round((vm_kb(s.pid, "VmRSS") or 0) / 1024, 1) for s in servers]
        out["waited_for_quiet_s"] = round(quiet.wait(), 1)
        argv = [
            PYTHON,
            str(BENCH / "waiters.py"),
            "--mode",
            scenario.mode,
            "--wait-url",
            urls[0],
            "--push-url",
            urls[-1],
            "--data-dir",
            str(data_dir),
            "--count",
            str(count),
            "--sample",
            str(args.wait_sample),
            "--push-rate",
            str(args.push_rate),
            # Held without anything happening: 16 s for SSE, one whole round of its 15 s
            # pings (every stream pings once in any 15 s window after they are all open).
            "--idle",
            "16" if scenario.mode == "sse" else "5",
        ]
        for server in servers:
            argv += ["--server-pid", str(server.pid)]
        # open (60) + idle CPU (20) + idle hold (16) + pushes + their last answers (10 + 30)
        # + closing (10) + slack
        limit = 60 + 20 + 16 + args.wait_sample / args.push_rate + 40 + 10 + 30
        polls = scenario.servers == 1 and args.duration > 0
        ctx = Context(
            base_url=urls[0],
            data_dir=data_dir,
            duration=args.duration,
            connections=args.connections,
            server=servers[0],
            pg_database=PG_DATABASE if db == "postgresql" else None,
            pg_admin_url=args.postgres_url if db == "postgresql" else None,
            quiet=quiet,
        )
        if polls:
            # The hot path on this fresh server, then again while the waiters are held.
            out["polls"] = [asdict(run_wrk(ctx, POLL_BEFORE))]
            pause = WORK / f"waiters-{scenario.key}.go"
            pause.unlink(missing_ok=True)
            argv += ["--pause-file", str(pause)]
        sys0 = system_busy_seconds()
        wall0 = time.monotonic()
        client = subprocess.Popen(
            argv, cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            if polls:
                assert client.stdout is not None
                for raw in client.stdout:  # bounded: the client waits 90 s at most
                    if raw.startswith("BENCH_HOLDING"):
                        out["polls"].append(asdict(run_wrk(ctx, POLL_HOLDING)))
                        break
                pause.touch()
            stdout, stderr = client.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            client.kill()
            client.communicate()
            out["error"] = f"the load client did not finish in {limit:.0f} s"
            return out
        wall = time.monotonic() - wall0
        out["machine_busy_pct"] = round(100 * (system_busy_seconds() - sys0) / wall, 1)
        line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_WAIT ")), None)
        if line is None:
            out["error"] = f"client exit {client.returncode}: {stderr.strip()[-600:]}"
            return out
        out.update(json.loads(line.removeprefix("BENCH_WAIT ")))
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            text = server.log_path.read_text(errors="replace")
            out.setdefault("server_log_errors", []).append(
                len(re.findall(r'"level": "(?:error|critical)"', text)) + text.count("Traceback")
            )
    log(f"{db}: {wait_summary(out)}")
    return out


def wait_summary(w: dict[str, Any]) -> str:
    if w.get("error"):
        return f"{w['title']}: ERROR {w['error']}"
    commit = w["delay_from_commit_ms"]
    return (
        f"{w['title']}: {w['holding']:,} of {w['waiters']:,} open in {w['open_s']} s; "
        f"{w['delivered']}/{w['pushes']} codes delivered, from the push's answer p50 "
        f"{_fmt(commit['p50'])} ms, p99 {_fmt(commit['p99'])} ms, max {_fmt(commit['max'])} ms; "
        f"peak RSS {w['server_rss_peak_sampled_mb']} MB; errors {w['errors'] or 'none'}"
    )


def run_agent_purchase(ctx: Context, env: dict[str, str], data_dir: Path) -> Run:
    """Start the local agent, connect it (provider add --agent-url, offer set), wait until
    its stock is on sale (one poll: OTPHUB_AGENT_POLL_SECONDS, 15 by default), then run
    purchase + cancel cycles on its (service, country)."""
    service, country, country_name = AGENT_TARGET
    port = free_port()
    agent = Server(
        "agent",
        [
            PYTHON,
            str(BENCH / "agent_app.py"),
            "--port",
            str(port),
            "--country",
            country_name,
            "--service",
            service,
        ],
        env,
        WORK / "agent.log",
    )
    try:
        agent.wait_ready(f"http://127.0.0.1:{port}/ready")
        ok, output, _ = otphub_cli(
            [
                "provider",
                "add",
                f"bench-agent-{port}",
                "--agent-url",
                f"http://127.0.0.1:{port}/agent",
                "--json",
            ],
            env,
        )
        if not ok:
            return Run(key=AGENT_PURCHASE.key, title=AGENT_PURCHASE.title, wrk="", error=output)
        provider_id = json.loads(output.splitlines()[-1])["id"]
        ok, output, _ = otphub_cli(
            [
                "offer",
                "set",
                "--provider",
                str(provider_id),
                "--service",
                service,
                "--country",
                country,
                "--price",
                "0.01",
                "--payout",
                "0.01",
            ],
            env,
        )
        if not ok:
            return Run(key=AGENT_PURCHASE.key, title=AGENT_PURCHASE.title, wrk="", error=output)
        key = (data_dir / "customers.tsv").read_text().split()[0]  # the first customer's
        query = f"api_key={key}&action=getPrices&service={service}&country={country}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(
                    f"{ctx.base_url}/stubs/handler_api.php?{query}", timeout=5
                ) as answer,
            ):
                offered = json.loads(answer.read()).get(country, {}).get(service, {})
                if offered.get("cost") == 0.01:
                    break
            time.sleep(0.5)
        else:
            return Run(
                key=AGENT_PURCHASE.key,
                title=AGENT_PURCHASE.title,
                wrk="",
                error="the agent's stock was not on sale within 60 s",
            )
        time.sleep(2.5)  # the purchase path notices the new remote provider (2 s)
        return run_wrk(ctx, AGENT_PURCHASE)
    finally:
        agent.stop()


def summary_line(run: Run) -> str:
    if run.error:
        return f"{run.title}: ERROR {run.error}"
    extra = f", {run.ops_per_s:.1f} cycles/s" if run.ops_per_s is not None else ""
    p99 = f"{run.p99_ms:.1f}" if run.p99_ms is not None else "-"
    return (
        f"{run.title}: {run.rps:.1f} req/s{extra}, p50 {run.p50_ms:.1f} ms, p99 {p99} ms, "
        f"{run.ok} ok, {run.bad} unexpected"
    )


# ---------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    runs = {r["key"]: r for r in result.get("runs", [])}
    base = {r["key"]: r for r in result.get("baselines", [])}

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    return {
        "get_status_over_bare_word": ratio(
            runs.get("get_status", {}).get("rps"), base.get("baseline_word", {}).get("rps")
        ),
        "purchase_cycles_over_bare_db_write": ratio(
            runs.get("purchase_cancel", {}).get("ops_per_s"),
            base.get("baseline_db", {}).get("rps"),
        ),
    }


def table(result: dict[str, Any]) -> str:
    db = result["database"]
    head = (
        f"{'scenario':<26} {'wrk':<17} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'ok':>7} {'unexp':>6} {'srv%':>5} {'db%':>5} {'wrk%':>5} {'oth%':>5}  notes"
    )
    lines = [f"== {db} ==", head, "-" * len(head)]
    for run in [*result.get("runs", []), *result.get("baselines", [])]:
        if run["error"]:
            lines.append(f"{run['title']:<26} ERROR: {run['error']}")
            continue
        notes = []
        if run["ops_per_s"] is not None:
            notes.append(f"{run['ops_per_s']:.1f} cycles/s")
        if run["bad"]:
            notes.append(f"unexpected e.g. {run['bad_sample'][:40]!r}")
        if run["socket_errors"]:
            notes.append(f"socket errors {run['socket_errors']}")
        if run["note"]:
            notes.append(run["note"])
        if run["db_stats"].get("sessions"):
            notes.append(f"{run['db_stats']['sessions']} new PG connections")
        handler = sorted(run["server_ms"].items(), key=lambda item: -item[1]["n"])[:3]
        if handler:
            notes.append(
                "handler p50/p99 ms: "
                + ", ".join(f"{a} {t['p50']:.1f}/{t['p99']:.1f}" for a, t in handler)
            )
        lines.append(
            f"{run['title']:<26} {run['wrk']:<17} {run['rps']:>8.1f} {_fmt(run['p50_ms']):>8} "
            f"{_fmt(run['p99_ms']):>8} {run['ok']:>7} {run['bad']:>6} "
            f"{_fmt(run['server_cpu_pct'], 0):>5} {_fmt(run['db_cpu_pct'], 0):>5} "
            f"{_fmt(run['wrk_cpu_pct'], 0):>5} {_fmt(run['other_cpu_pct'], 0):>5}  "
            + "; ".join(notes)
        )
    if result.get("waits"):
        lines.extend(wait_table(result["waits"]))
    r = result.get("ratios", {})
    lines.append(
        "ratios: getStatus / bare word = "
        + _fmt(r.get("get_status_over_bare_word"), 2)
        + "; purchase+cancel cycles / bare DB read+write = "
        + _fmt(r.get("purchase_cycles_over_bare_db_write"), 2)
    )
    lines.append(
        f"peak RSS (VmHWM): otphub {result.get('peak_rss_mb')} MB "
        f"(after start {result.get('rss_after_start_mb')} MB), "
        f"baseline app {result.get('baseline_peak_rss_mb')} MB"
    )
    audit = "clean" if result.get("audit_after_run", {}).get("clean") else "FAILED"
    slog = result.get("server_log", {})
    lines.append(
        f"audit after the run: {audit}; server log: {slog.get('request_lines')} request lines, "
        f"{slog.get('errors')} errors, {slog.get('bytes', 0) / 1e6:.1f} MB"
    )
    lines.append(f"phases (s): {result.get('phases_s')}")
    src = result.get("src", {})
    lines.append(
        f"measured: commit {src.get('git_commit', '?')[:10]}"
        + (" + uncommitted changes in src/" if src.get("uncommitted_changes") else "")
        + f", src/ tree {src.get('tree_sha256', '?')[:12]}"
        + (
            "; WARNING: src/ changed during this database's run"
            if result.get("src_changed_during_run")
            else ""
        )
    )
    return "\n".join(lines)


def wait_table(waits: list[dict[str, Any]]) -> list[str]:
    """The waiting scenarios, below the request-rate table: delays in ms per code."""
    head = (
        f"{'waiting requests':<26} {'open':>6} {'open s':>6} {'codes':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'sent p50':>8} {'push p50':>8} "
        f"{'RSS MB':>13} {'srv%':>5}  notes"
    )
    lines = ["", head, "-" * len(head)]
    for w in waits:
        if w.get("error"):
            lines.append(f"{w['title']:<26} ERROR: {w['error']}")
            continue
        commit, sent = w["delay_from_commit_ms"], w["delay_from_sent_ms"]
        rss_start = w["rss_after_start_mb"][0]
        rss_peak = next(iter(w["server_rss_peak_sampled_mb"].values()))
        srv = next(iter(w["server_cpu_push_pct"].values()))
        notes = []
        if w.get("written_s") is not None:
            notes.append(f"requests written in {w['written_s']} s")
        if len(w["server_rss_peak_sampled_mb"]) > 1:
            others = list(w["server_rss_peak_sampled_mb"].values())[1:]
            notes.append(f"push server peak RSS {others} MB")
        polls = [p for p in w.get("polls", []) if not p["error"]]
        if len(polls) == 2:
            before, holding = polls
            notes.append(
                f"getStatus req/s (p99 ms) before {before['rps']:.0f} ({_fmt(before['p99_ms'])})"
                f", holding {holding['rps']:.0f} ({_fmt(holding['p99_ms'])})"
            )
        idle = w.get("server_cpu_idle_pct", {})
        if idle:
            notes.append(f"srv% holding idle {next(iter(idle.values()))}")
        if w["errors"]:
            notes.append(f"errors {w['errors']}")
        if w["missed"]:
            notes.append(f"{w['missed']} codes never seen")
        if any(w.get("server_log_errors", [])):
            notes.append(f"server log errors {w['server_log_errors']}")
        lines.append(
            f"{w['title']:<26} {w['holding']:>6} {w['open_s']:>6.1f} "
            f"{w['delivered']:>4}/{w['pushes']:<4} {_fmt(commit['p50']):>7} "
            f"{_fmt(commit['p99']):>7} {_fmt(commit['max']):>7} {_fmt(sent['p50']):>8} "
            f"{_fmt(w['push_latency_ms']['p50']):>8} {f'{rss_start}->{rss_peak}':>13} "
            f"{_fmt(srv, 0):>5}  " + "; ".join(notes)
        )
    lines.append(
        "waiting requests: open = requests held open on one server process (--waiters), "
        "open s = until all were open; codes = delivered/pushed; p50/p99/max = from the "
        "push's HTTP answer (after its commit) to the waiter's answer or event; sent p50 = "
        "from the push's request; RSS = the waiting server's VmRSS after start -> sampled "
        "peak; srv% = its CPU during the pushes"
    )
    return lines


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def src_state() -> dict[str, Any]:
    """What src/ is right now: src/ may change while the benchmark runs (another developer
    at work), so this is recorded when each server starts and checked when it stops."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--", "src")),
        "tree_sha256": digest.hexdigest(),
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = subprocess.run(
        [
            PYTHON,
            "-c",
            "import json, sqlite3, sys; from importlib.metadata import version as v; "
            "print(json.dumps({'python': sys.version.split()[0], 'sqlite': "
            "sqlite3.sqlite_version, **{p: v(p) for p in ('sqlalchemy', 'asyncpg', "
            "'aiosqlite', 'uvicorn', 'starlette', 'uvloop', 'httptools', 'structlog')}}))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    src_diff = git("diff", "HEAD", "--", "src")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "versions": json.loads(versions.stdout or "{}"),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0:1],
        "git_commit": git("rev-parse", "HEAD"),
        "src_uncommitted_changes": bool(git("status", "--porcelain", "--", "src")),
        "src_diff_sha256": hashlib.sha256(src_diff.encode()).hexdigest() if src_diff else None,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="OTPHub benchmark (see bench/README.md).")
    parser.add_argument("--scale", type=int, default=1, help="1: 100k numbers, 10k live")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of getStatus first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "OTPHUB_BENCH_POSTGRES_URL",
            os.environ.get("OTPHUB_TEST_POSTGRES_URL", DEFAULT_PG_ADMIN),
        ),
        help=f"an admin connection; the bench creates and drops {PG_DATABASE}",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="OTPHUB_NAME=VALUE",
        help="a setting for the OTPHub server, e.g. OTPHUB_LOG_REQUESTS=all (repeatable)",
    )
    parser.add_argument("--only", nargs="*", help="scenario keys (for development)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--waiters",
        type=int,
        default=10_000,
        help="waiting requests held open in the long-poll and SSE scenarios (0: none)",
    )
    parser.add_argument(
        "--wait-sample", type=int, default=1000, help="of them, how many get an SMS pushed"
    )
    parser.add_argument(
        "--push-rate", type=float, default=100.0, help="SMS pushed per second to the waiters"
    )
    parser.add_argument(
        "--quiet-budget",
        type=float,
        default=120.0,
        help="seconds the whole benchmark may wait for other processes to go idle (0: never)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the server with py-spy during each scenario (slows it down)",
    )
    args = parser.parse_args()
    server_env: dict[str, str] = {}
    for item in args.server_env:
        name, equals, value = item.partition("=")
        if not equals or not name.startswith("OTPHUB_"):
            sys.exit(f"bench: --server-env wants OTPHUB_NAME=VALUE, not {item!r}")
        server_env[name] = value
    args.server_env = server_env
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is missing (apt-get install wrk, or use `make bench`)")
    if args.scale < 1:
        sys.exit("bench: --scale must be 1 or more")

    # The waiting scenarios hold 10,000 connections: the servers (which inherit this limit)
    # and the load client need a descriptor each.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.waiters + 2000 > resource.getrlimit(resource.RLIMIT_NOFILE)[0]:
        log(f"!!! ulimit -n {hard} is below --waiters + 2000: the waiting scenarios will fail")
    started = time.time()
    stamp = args.stamp = time.strftime("%Y-%m-%d-%H%M%S")
    quiet = Quiet(args.quiet_budget)
    if args.profile and not (shutil.which("py-spy") or os.environ.get("PY_SPY")):
        sys.exit("bench: --profile needs py-spy on PATH (pip install py-spy) or PY_SPY=<path>")
    WORK.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    shape = loader.Shape(scale=args.scale)
    overall: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "scale": args.scale,
        "shape": {**asdict(shape), "numbers": shape.numbers, "live": shape.live},
        "machine": machine(),
        "server": {
            "command": ".venv/bin/python -m otphub serve --port P --workers 1",
            "settings": "OTPHub defaults (request logs except answered status polls, sweeper "
            "on, SQLite synchronous=NORMAL) except "
            + ", ".join(f"{k}={v}" for k, v in {**SERVER_OVERRIDES, **args.server_env}.items()),
        },
        "wrk": {
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": "1; one per connection for chained scripts (purchase+cancel, mixed)",
            "prices_full": "4 connections, 60 s timeout, or sequential requests when one "
            "request takes over 2 s",
        },
        "databases": {},
    }
    failures = []
    wanted = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for db in wanted:
        if db == "sqlite":
            path = WORK / "otphub-bench.db"
            for f in sqlite_files(path):
                f.unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            loopback_only(args.postgres_url)
            admin, url = pg_urls(args.postgres_url)
            try:
                version = pg_recreate(admin)
            except Exception as exc:
                log(f"!!! PostgreSQL at {admin} unreachable ({exc}): its half is SKIPPED")
                overall["databases"][db] = {"database": db, "skipped": str(exc)}
                failures.append(f"{db}: skipped")
                continue
            overall["machine"]["postgresql"] = version
        log(f"=== {db} (scale {args.scale}) ===")
        try:
            result = bench_database(db, url, args, shape, quiet)
        except Exception as exc:
            log(f"!!! {db} failed: {exc}")
            result = {"database": db, "error": str(exc)}
            failures.append(f"{db}: {exc}")
        finally:
            if not args.keep:
                if db == "sqlite":
                    for f in sqlite_files(WORK / "otphub-bench.db"):
                        f.unlink(missing_ok=True)
                else:
                    with contextlib.suppress(Exception):
                        pg_drop(args.postgres_url)
        if "error" not in result:
            result["ratios"] = ratios(result)
            result["table"] = table(result)
            if not result["audit_after_run"]["clean"]:
                failures.append(f"{db}: audit failed after the run")
        overall["databases"][db] = result
        suffix = f"-x{args.scale}" if args.scale != 1 else ""
        single = {**overall, "databases": {db: result}}
        (args.results / f"{stamp}-{db}{suffix}.json").write_text(json.dumps(single, indent=2))

    overall["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    overall["duration_s"] = round(time.time() - started, 1)
    overall["waited_for_quiet_s"] = round(quiet.waited, 1)
    overall["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    latest = "latest.json" if args.scale == 1 else f"latest-x{args.scale}.json"
    (args.results / latest).write_text(json.dumps(overall, indent=2))

    m = overall["machine"]
    print()
    print(
        f"OTPHub benchmark, scale {args.scale} ({shape.numbers:,} numbers, {shape.live:,} live "
        f"activations, {shape.services} services, {shape.countries} countries, "
        f"{shape.providers} providers, {shape.customers} customers)"
    )
    print(
        f"machine: {m['nproc']} cores ({m['cpu']}), Python {m['versions'].get('python')}, "
        f"SQLite {m['versions'].get('sqlite')}, PostgreSQL {m.get('postgresql', '-')}, "
        f"commit at start {m['git_commit'][:10]}"
        + (" + uncommitted changes in src/" if m["src_uncommitted_changes"] else "")
        + f"; load average at start {' '.join(m['loadavg_at_start'])}"
    )
    print(f"server: {overall['server']['command']}; {overall['server']['settings']}")
    print(
        f"wrk: {args.duration} s per run, {args.connections} connections, 1 thread (one per "
        "connection for purchase+cancel and mixed); getPrices full: 4 connections or "
        "sequential requests"
    )
    print(
        "columns: req/s = completed requests per second; p50/p99 = wrk latency percentiles; "
        "ok/unexp = answers as expected / not; srv%, db%, wrk%, oth% = CPU of the server, "
        "of the PostgreSQL backends, of wrk, and of everything else on the machine, in % of "
        "one core"
    )
    for db in wanted:
        result = overall["databases"][db]
        print()
        if "table" in result:
            print(result["table"])
        else:
            print(f"== {db} == {result.get('skipped') or result.get('error')}")
    print()
    print(
        f"total {overall['duration_s']:.0f} s (of which {quiet.waited:.0f} s waiting for other "
        f"processes to go idle); results in {args.results}/"
    )
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
