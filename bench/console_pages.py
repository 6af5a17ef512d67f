#!/usr/bin/env python3
"""The web console's pages timed on the benchmark's data: ``make bench-console`` (or
``.venv/bin/python bench/console_pages.py [--scale 1] [--db sqlite|postgresql|both]``).

For each database: a fresh database, ``otphub init``, the benchmark's data loaded straight
into the tables (bench/loader.py, the same as ``make bench``), the first customer given a
console login (``otphub customer set 1 --email ... --password-stdin``) and an operator login
(``otphub operator add``), then ``otphub serve --workers 1`` with the benchmark's settings.
One client signs in as each and requests every console page ``--requests`` times in a row
(after 3 unmeasured requests) on one keep-alive connection, and prints p50, p95 and max of
each page's time: from sending the request on 127.0.0.1 to the end of the answer, which is
the server's time plus a loopback round trip. Writes bench/results/console-pages-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# A database of its own, so that a `make bench` of the same checkout is left alone.
os.environ.setdefault("OTPHUB_BENCH_PG_DATABASE", "otphub_bench_console")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import loader
import run

PASSWORD = "bench-console-password"
CUSTOMER_EMAIL = "bench-customer@example.com"
OPERATOR_EMAIL = "bench-operator@example.com"
WARMUP = 3


def customer_pages(activation_id: int, service: str, country: int) -> list[str]:
    return [
        "/",
        "/buy",
        f"/buy/offers?service={service}&country={country}",
        f"/buy/operators?service={service}&country={country}",
        f"/activations/{activation_id}",
        "/history",
        f"/history?service={service}",
        "/history.csv",
        "/keys",
        "/webhooks",
    ]


def operator_pages(phone: str, service: str, country: int) -> list[str]:
    return [
        "/admin",
        "/admin/providers",
        "/admin/providers/1",
        "/admin/offers",
        f"/admin/offers?service={service}&country={country}",
        "/admin/numbers",
        f"/admin/numbers?phone={phone}",
        "/admin/customers",
        "/admin/customers?q=1",
        "/admin/customers/1",
        "/admin/audit",
        "/admin/sms",
        "/admin/changes",
    ]


def cli(args: list[str], env: dict[str, str], stdin: str = "") -> None:
    done = subprocess.run(
        [run.PYTHON, "-m", "otphub", *args],
        cwd=run.WORK,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"otphub {' '.join(args)} failed: {done.stderr}{done.stdout}")


@contextmanager
def signed_in(base_url: str, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None, form.text
        answer = client.post(
            "/login", data={"csrf": token.group(1), "email": email, "password": PASSWORD}
        )
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in of {email} refused: {answer.status_code} {answer.text}")
        yield client


def time_page(client: httpx.Client, path: str, requests: int) -> dict[str, Any]:
    statuses: set[int] = set()
    size = 0
    for _ in range(WARMUP):
        client.get(path)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        statuses.add(answer.status_code)
        size = len(answer.content)
    times.sort()
    return {
        "path": path,
        "status": sorted(statuses),
        "bytes": size,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
        "max_ms": round(times[-1], 1),
    }


def measure(db: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = run.clean_env(url)
    cli(["init"], env)
    run.log(f"{db}: loading the benchmark's data (scale {args.scale})")
    report = loader.load(url, secret=run.SECRET.encode(), shape=loader.Shape(scale=args.scale))
    run.log(f"{db}: loaded {report.counts} in {report.seconds:.1f} s")
    generated = report.generated
    first_key = generated.customer_keys[0]
    owned = [a for a, key, _phone, _pk in generated.live if key == first_key]
    phone = generated.live[0][2]
    service, country, _free = generated.targets[0]
    cli(["customer", "set", "1", "--email", CUSTOMER_EMAIL, "--password-stdin"], env, PASSWORD)
    cli(["operator", "add", OPERATOR_EMAIL, "--password-stdin"], env, PASSWORD)

    port = run.free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = run.Server(
        "otphub",
        [run.PYTHON, "-m", "otphub", "serve", "--port", str(port), "--workers", "1"],
        {**env, **run.SERVER_OVERRIDES},
        run.WORK / f"console-server-{db}.log",
    )
    pages: list[dict[str, Any]] = []
    try:
        server.wait_ready(f"{base_url}/healthz")
        with signed_in(base_url, CUSTOMER_EMAIL) as customer:
            for path in customer_pages(owned[0], service, country):
                pages.append({"who": "customer", **time_page(customer, path, args.requests)})
        with signed_in(base_url, OPERATOR_EMAIL) as operator:
            for path in operator_pages(phone, service, country):
                pages.append({"who": "operator", **time_page(operator, path, args.requests)})
        with httpx.Client(base_url=base_url, timeout=60) as stranger:
            pages.append({"who": "stranger", **time_page(stranger, "/login", args.requests)})
    finally:
        server.stop()
    return {
        "database": db,
        "scale": args.scale,
        "requests_per_page": args.requests,
        "rows": report.counts,
        "customer_live_activations": len(owned),
        "pages": pages,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['database']} (scale {result['scale']}, {result['requests_per_page']} requests "
        f"per page; customer 1 has {result['customer_live_activations']} live activations)",
        f"{'who':9} {'page':48} {'status':>7} {'KiB':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}",
    ]
    for p in result["pages"]:
        status = ",".join(str(s) for s in p["status"])
        flag = "  <-- over 100 ms" if p["p95_ms"] > 100 else ""
        lines.append(
            f"{p['who']:9} {p['path'][:48]:48} {status:>7} {p['bytes'] / 1024:6.1f} "
            f"{p['p50_ms']:7.1f} {p['p95_ms']:7.1f} {p['max_ms']:7.1f}{flag}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="The web console's pages, timed.")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=30, help="measured requests per page")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("OTPHUB_BENCH_POSTGRES_URL", run.DEFAULT_PG_ADMIN),
        help=f"an admin connection; creates and drops {run.PG_DATABASE}",
    )
    args = parser.parse_args()
    run.WORK.mkdir(parents=True, exist_ok=True)
    results = []
    if args.db in ("sqlite", "both"):
        path = run.WORK / "console-pages.db"
        for file in run.sqlite_files(path):
            file.unlink(missing_ok=True)
        try:
            results.append(measure("sqlite", f"sqlite:///{path}", args))
        finally:
            for file in run.sqlite_files(path):
                file.unlink(missing_ok=True)
    if args.db in ("postgresql", "both"):
        run.loopback_only(args.postgres_url)
        admin_url, url = run.pg_urls(args.postgres_url)
        run.pg_recreate(admin_url)
        try:
            results.append(measure("postgresql", url, args))
        finally:
            run.pg_drop(admin_url)
    for result in results:
        print(table(result) + "\n")
    output = run.RESULTS / "console-pages-latest.json"
    output.write_text(json.dumps({"src": run.src_state(), "results": results}, indent=1) + "\n")
    print(f"written to {output.relative_to(run.ROOT)}")
    slow = [p for r in results for p in r["pages"] if p["p95_ms"] > 100]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
