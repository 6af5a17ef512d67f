#!/usr/bin/env python3
"""The load client of the waiting scenarios (bench/README.md, "Waiting requests"): holds
thousands of waiting requests open on one OTPHub server, pushes SMS for a sample of their
activations through the agent push endpoint, and times each code from the push to the
waiting request's answer.

``python bench/waiters.py --mode longpoll|sse --wait-url http://127.0.0.1:P
--push-url http://127.0.0.1:Q --data-dir var/bench/data-sqlite --server-pid PID ...``

It runs in a process of its own (run.py starts it), so the server keeps its core. Raw
asyncio streams and hand-written HTTP/1.1, not an HTTP client library: 10,000 connections
then cost the client little. Prints one line ``BENCH_WAIT {json}`` on stdout.

- ``longpoll``: ``GET /stubs/handler_api.php?action=getStatus&id=A&wait=60`` per activation.
  There is no answer until the activation changes, so "open" is known from the server's
  side: every request written, then the server's CPU back to idle (it has read them all).
- ``sse``: ``GET /api/v1/activations/A/events`` with ``Authorization: Bearer``; open when
  the stream's first ``state`` event has arrived.

Pushes: ``--sample`` activations of the open ones, one SMS each with a code of its own,
paced at ``--push-rate`` per second over a few keep-alive connections. Per code: the delay
from the push's HTTP answer (which follows its commit) to the waiter's answer (long-poll) or
first event carrying the code (SSE), and from the moment the push was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CLK_TCK = os.sysconf("SC_CLK_TCK")
now = time.perf_counter


@dataclass(frozen=True)
class Target:
    activation_id: int
    key: str
    phone: str
    provider_key: str


@dataclass
class Waiter:
    target: Target
    writer: asyncio.StreamWriter | None = None
    sent_at: float | None = None  # request written
    opened_at: float | None = None  # SSE: first state event
    code: str | None = None  # the code pushed to it, once its push is sent
    code_at: float | None = None  # the answer / event carrying that code
    answer: str | None = None  # long-poll: the body
    answered_at: float | None = None
    events: int = 0
    early: bool = False  # answered (long-poll) before any push of its own
    closed_by_server: bool = False
    error: str | None = None


@dataclass
class Push:
    waiter: Waiter
    sms_id: int
    code: str
    sent_at: float = 0.0
    answered_at: float | None = None
    error: str | None = None


@dataclass
class Tally:
    errors: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, sample: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.samples.setdefault(kind, sample[:200])


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def vm_kb(pid: int, name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """The server's VmRSS every 0.25 s (VmHWM covers the whole life of the process; the
    sampled peak is while this client holds its connections)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kb = dict.fromkeys(pids, 0)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for pid in self.pids:
            self.peak_kb[pid] = max(self.peak_kb[pid], vm_kb(pid, "VmRSS"))

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.25)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()


async def until_idle(pid: int, *, threshold_pct: float, window: float, limit: float) -> float:
    """Seconds until the process uses under ``threshold_pct`` of a core over ``window``."""
    started = now()
    while now() - started < limit:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        if 100 * (cpu_seconds(pid) - before) / window < threshold_pct:
            break
    return now() - started


# ---------------------------------------------------------------- HTTP/1.1 by hand


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        async for chunk in chunks(reader):
            parts.append(chunk)
        return b"".join(parts)
    return await reader.read(65536)


async def chunks(reader: asyncio.StreamReader) -> Any:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


def split_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


# ---------------------------------------------------------------- the waiters


class Waiters:
    def __init__(self, args: argparse.Namespace, targets: list[Target]) -> None:
        self.args = args
        self.host, self.port = split_url(args.wait_url)
        self.waiters = [Waiter(t) for t in targets]
        self.tally = Tally()
        self.connect_gate = asyncio.Semaphore(args.connect_concurrency)
        self.opened = 0
        self.all_open = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.pushing = False  # answers before the pushes start are "early"

    def request(self, waiter: Waiter) -> bytes:
        t = waiter.target
        if self.args.mode == "longpoll":
            return (
                f"GET /stubs/handler_api.php?api_key={t.key}&action=getStatus"
                f"&id={t.activation_id}&wait={self.args.wait} HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\n\r\n"
            ).encode()
        return (
            f"GET /api/v1/activations/{t.activation_id}/events HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {t.key}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()

    def _opened(self, waiter: Waiter) -> None:
        waiter.opened_at = now()
        self.opened += 1
        if self.opened == len(self.waiters):
            self.all_open.set()

    def _failed(self, waiter: Waiter, kind: str, sample: str) -> None:
        waiter.error = kind
        self.tally.add(kind, sample)
        if waiter.opened_at is None:
            self._opened(waiter)  # counted as opened (and failed): the open phase ends

    async def run_one(self, waiter: Waiter) -> None:
        try:
            async with self.connect_gate:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                waiter.writer = writer
                writer.write(self.request(waiter))
                await writer.drain()
                waiter.sent_at = now()
            if self.args.mode == "longpoll":
                self._opened(waiter)
                await self.read_answer(waiter, reader)
            else:
                await self.read_stream(waiter, reader)
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            kind = type(e).__name__
            if waiter.code is not None and waiter.code_at is None:
                kind += " (after its push)"
            self._failed(waiter, kind, str(e))

    async def read_answer(self, waiter: Waiter, reader: asyncio.StreamReader) -> None:
        status, headers = await read_head(reader)
        body = (await read_body(reader, headers)).decode(errors="replace")
        at = now()
        waiter.answer, waiter.answered_at = body, at
        if status != 200:
            self._failed(waiter, f"HTTP {status}", body)
        elif waiter.code is not None and waiter.code in body:
            waiter.code_at = at
        elif waiter.code is None:
            waiter.early = True
            self.tally.add("answered before its push", body)
        else:
            self.tally.add("answered without its pushed code", body)

    async def read_stream(self, waiter: Waiter, reader: asyncio.StreamReader) -> None:
        status, headers = await read_head(reader)
        if status != 200 or "text/event-stream" not in headers.get("content-type", ""):
            body = (await read_body(reader, headers)).decode(errors="replace")
            self._failed(waiter, f"HTTP {status}", body)
            return
        pending = b""
        source = (
            chunks(reader)
            if headers.get("transfer-encoding", "").lower() == "chunked"
            else raw_reads(reader)
        )
        async for data in source:
            pending += data.replace(b"\r\n", b"\n")
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                self.on_event(waiter, block.decode(errors="replace"))
        waiter.closed_by_server = True
        if waiter.opened_at is None:
            self._failed(waiter, "stream closed before its first state", pending.decode())

    def on_event(self, waiter: Waiter, block: str) -> None:
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue  # a comment (": ping")
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
        if not data:
            return  # "retry:" alone, or a comment
        waiter.events += 1
        text = "\n".join(data)
        if kind == "state" and waiter.opened_at is None:
            self._opened(waiter)
        if waiter.code is not None and waiter.code_at is None and waiter.code in text:
            waiter.code_at = now()

    def close_all(self) -> None:
        for waiter in self.waiters:
            if waiter.writer is not None:
                with contextlib.suppress(Exception):
                    waiter.writer.transport.abort()
        for task in self.tasks:
            task.cancel()


async def raw_reads(reader: asyncio.StreamReader) -> Any:
    while data := await reader.read(65536):
        yield data


# ---------------------------------------------------------------- the pushes


async def push_all(args: argparse.Namespace, pushes: list[Push], tally: Tally) -> float:
    """Every push at its time (``--push-rate`` per second from now), on ``--pushers``
    keep-alive connections; returns when the last one is answered."""
    host, port = split_url(args.push_url)
    started = now()
    interval = 1.0 / args.push_rate
    queue: asyncio.Queue[tuple[int, Push]] = asyncio.Queue()
    for index, push in enumerate(pushes):
        queue.put_nowait((index, push))

    async def pusher() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while not queue.empty():
            index, push = queue.get_nowait()
            delay = started + index * interval - now()
            if delay > 0:
                await asyncio.sleep(delay)
            t = push.waiter.target
            body = json.dumps(
                {
                    "action": "PUSH_SMS",
                    "key": t.provider_key,
                    "smsId": push.sms_id,
                    "phone": int(t.phone),
                    "phoneFrom": "Telegram",
                    "text": f"Telegram code: {push.code}. Do not give this code to anyone",
                }
            ).encode()
            request = (
                f"POST /agent/api/sms HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                push.waiter.code = push.code
                push.sent_at = now()
                writer.write(request)
                await writer.drain()
                async with asyncio.timeout(args.push_timeout):
                    status, headers = await read_head(reader)
                    answer = await read_body(reader, headers)
                push.answered_at = now()
                if status != 200 or answer != b'{"status":"SUCCESS"}':
                    push.error = f"HTTP {status}"
                    tally.add(f"push answered HTTP {status}", answer.decode(errors="replace"))
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                push.error = type(exc).__name__
                tally.add(f"push {type(exc).__name__}", str(exc))
                if writer is not None:
                    writer.transport.abort()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(pusher() for _ in range(args.pushers)))
    return now() - started


# ---------------------------------------------------------------- the run


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "min": None}
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 2)

    return {
        "n": len(values),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(values[-1] * 1000, 2),
        "min": round(values[0] * 1000, 2),
    }


async def poll_until(done: Callable[[], bool], *, limit: float, every: float) -> None:
    """Until ``done()`` (checked every ``every`` seconds), ``limit`` seconds at most: what
    it waits for is spread over thousands of connections, no one event to wait on."""
    for _ in range(max(1, round(limit / every))):
        if done():
            return
        await asyncio.sleep(every)


def read_targets(data_dir: Path, count: int) -> list[Target]:
    """The loader's live activations (status.tsv: id, owner's key) with their numbers
    (live_phones.tsv: phone, provider's key), in the same order."""
    status = (data_dir / "status.tsv").read_text().splitlines()
    phones = (data_dir / "live_phones.tsv").read_text().splitlines()
    targets = []
    for s, p in zip(status, phones, strict=True):
        activation, key = s.split("\t")
        phone, provider_key = p.split("\t")
        targets.append(Target(int(activation), key, phone, provider_key))
    return targets[:count]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    targets = read_targets(args.data_dir, args.count)
    rng = random.Random(args.seed)
    pids = args.server_pid
    waiting_pid = pids[0]
    rss = RssSampler(pids)
    rss.start()
    cpu0 = {pid: cpu_seconds(pid) for pid in pids}
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    waiters = Waiters(args, targets)
    result: dict[str, Any] = {"mode": args.mode, "waiters": len(targets)}

    # ---- open
    t0 = now()
    waiters.tasks = [asyncio.create_task(waiters.run_one(w)) for w in waiters.waiters]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(waiters.all_open.wait(), timeout=args.open_limit)
    result["open_s"] = round(now() - t0, 2)
    result["opened"] = waiters.opened
    # Long-poll: every request is written, and the server has read them all once its CPU is
    # idle. SSE: every stream has its first state; the pushes wait for the server's idle too,
    # so that they are not timed against the last openings' work.
    settle = await until_idle(waiting_pid, threshold_pct=10, window=0.25, limit=args.settle)
    result["settle_s"] = round(settle, 2)
    if args.mode == "longpoll":
        result["written_s"] = result["open_s"]
        result["open_s"] = round(now() - t0, 2)
    result["server_cpu_open_s"] = round(cpu_seconds(waiting_pid) - cpu0[waiting_pid], 2)
    rss.sample()
    result["server_rss_open_mb"] = {str(p): round(vm_kb(p, "VmRSS") / 1024, 1) for p in pids}
    # Only those open now are pushed to (an SSE stream still without its first state
    # would time its opening, not the change).
    # What holding them costs when nothing happens (SSE: the pings every 15 s and whatever
    # the server does for each).
    idle0 = {pid: cpu_seconds(pid) for pid in pids}
    await asyncio.sleep(args.idle)
    result["idle_s"] = args.idle
    result["server_cpu_idle_pct"] = {
        str(p): round(100 * (cpu_seconds(p) - idle0[p]) / args.idle, 1) for p in pids
    }
    if args.pause_file is not None:
        # run.py measures the status polls (wrk) on this server now, then creates the file.
        print("BENCH_HOLDING", flush=True)
        paused = now()
        await poll_until(args.pause_file.exists, limit=args.pause_limit, every=0.1)
        result["paused_s"] = round(now() - paused, 2)
    holding = [
        w
        for w in waiters.waiters
        if w.opened_at is not None and w.error is None and w.answered_at is None
    ]
    result["holding"] = len(holding)

    # ---- push
    sample = rng.sample(holding, min(args.sample, len(holding)))
    # smsIds and codes new at every run: a code equal to the activation's current one would
    # change nothing that getStatus shows (the same database serves several runs).
    sms_base = int(time.time() * 1000) * 1000
    pushes = [
        Push(waiter=w, sms_id=sms_base + i, code=f"{sms_base // 1000 % 10**4:04d}{i % 1000:03d}")
        for i, w in enumerate(sample)
    ]
    waiters.pushing = True
    cpu_push0 = {pid: cpu_seconds(pid) for pid in pids}
    push_s = await push_all(args, pushes, waiters.tally)
    # ---- the last answers (bounded)
    await poll_until(
        lambda: (
            not any(
                p.waiter.code_at is None and p.waiter.error is None and p.answered_at
                for p in pushes
            )
        ),
        limit=args.drain,
        every=0.05,
    )
    hold_s = now() - t0 - result["open_s"]
    result["push_s"] = round(push_s, 2)
    result["server_cpu_push_pct"] = {
        str(p): round(100 * (cpu_seconds(p) - cpu_push0[p]) / max(push_s, 0.001), 1) for p in pids
    }
    rss.stop()
    result["server_rss_peak_sampled_mb"] = {
        str(p): round(kb / 1024, 1) for p, kb in rss.peak_kb.items()
    }
    result["server_vmhwm_mb"] = {str(p): round(vm_kb(p, "VmHWM") / 1024, 1) for p in pids}
    still_open = sum(
        1
        for w in waiters.waiters
        if w.error is None and w.answered_at is None and not w.closed_by_server
    )

    delivered = [p for p in pushes if p.answered_at is not None and p.waiter.code_at is not None]
    result["pushes"] = len(pushes)
    result["pushes_ok"] = sum(1 for p in pushes if p.answered_at is not None and not p.error)
    result["delivered"] = len(delivered)
    result["missed"] = sum(1 for p in pushes if p.error is None and p.waiter.code_at is None)
    result["delay_from_commit_ms"] = percentiles(
        [p.waiter.code_at - p.answered_at for p in delivered]  # type: ignore[operator]
    )
    # p50 per tenth of the pushes, in the order sent: a delay that grows through the run is
    # a backlog (the server falls behind), a flat one is the path's own latency.
    tenth = max(1, len(pushes) // 10)
    result["delay_from_commit_p50_by_tenth_ms"] = [
        percentiles(
            [
                p.waiter.code_at - p.answered_at
                for p in pushes[i : i + tenth]
                if p.answered_at is not None and p.waiter.code_at is not None
            ]
        )["p50"]
        for i in range(0, len(pushes), tenth)
    ]
    result["delay_from_sent_ms"] = percentiles(
        [p.waiter.code_at - p.sent_at for p in delivered]  # type: ignore[operator]
    )
    result["push_latency_ms"] = percentiles(
        [p.answered_at - p.sent_at for p in pushes if p.answered_at is not None]
    )
    result["early_answers"] = sum(1 for w in waiters.waiters if w.early)
    result["still_open_at_end"] = still_open
    result["events"] = sum(w.events for w in waiters.waiters)
    result["errors"] = waiters.tally.errors
    result["error_samples"] = waiters.tally.samples
    result["hold_s"] = round(hold_s, 2)
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    result["client_cpu_s"] = round(
        usage1.ru_utime - usage0.ru_utime + usage1.ru_stime - usage0.ru_stime, 2
    )
    result["server_cpu_s"] = {str(p): round(cpu_seconds(p) - cpu0[p], 2) for p in pids}
    waiters.close_all()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*waiters.tasks, return_exceptions=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("longpoll", "sse"), required=True)
    parser.add_argument("--wait-url", required=True, help="the server the waiters talk to")
    parser.add_argument("--push-url", required=True, help="the server the pushes go to")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--server-pid", type=int, action="append", required=True)
    parser.add_argument("--count", type=int, default=10_000, help="waiting requests")
    parser.add_argument("--sample", type=int, default=1000, help="activations pushed to")
    parser.add_argument("--push-rate", type=float, default=100.0, help="pushes per second")
    parser.add_argument("--pushers", type=int, default=4, help="push connections")
    parser.add_argument("--wait", type=int, default=60, help="long-poll wait=")
    parser.add_argument("--connect-concurrency", type=int, default=256)
    parser.add_argument("--open-limit", type=float, default=60.0, help="seconds to open all")
    parser.add_argument(
        "--pause-file", type=Path, help="once holding: print BENCH_HOLDING, wait for this file"
    )
    parser.add_argument("--pause-limit", type=float, default=90.0)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds held before pushes")
    parser.add_argument("--settle", type=float, default=20.0, help="at most, for the idle")
    parser.add_argument("--push-timeout", type=float, default=30.0, help="seconds per push")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds for late answers")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.count + 1000
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(run(args))
    print("BENCH_WAIT " + json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
