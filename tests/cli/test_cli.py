"""The ``otphub`` command's contract, on SQLite and PostgreSQL.

Most tests call the Typer app in-process (``CliRunner`` keeps stdout and stderr apart);
a few run the real entry points as subprocesses: ``.venv/bin/otphub``, ``python -m otphub``
and ``otphub serve``.

The contract: ``--json`` prints exactly one JSON object on stdout and nothing else; messages
go to stderr; bad input is a one-line error on stderr, a non-zero exit, and changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from otphub.cli import app
from otphub.config import Settings
from otphub.db.engine import open_database
from otphub.services import accounts, inventory
from otphub.services.runtime import build_runtime

SECRET = "cli-test-secret-0123456789"
KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]+")
BIN = Path(sys.executable).parent
OTPHUB = str(BIN / "otphub")
# Everything an operator command may change.
DATA_TABLES = (
    "accounts",
    "journal",
    "customers",
    "providers",
    "offers",
    "numbers",
    "activations",
    "sms",
    "api_keys",
)

runner = CliRunner()


# ---------------------------------------------------------------- helpers


def sql(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the test database (a fresh engine, closed after)."""

    async def go() -> list[tuple[Any, ...]]:
        db = open_database(url, pool_size=1)
        try:
            async with db.write() as conn:
                result = await conn.execute(text(statement), params)
                return [tuple(row) for row in result.all()] if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(go())


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table a command may change, plus the catalog's size."""

    async def go() -> dict[str, list[tuple[Any, ...]]]:
        db = open_database(url, pool_size=1)
        try:
            async with db.read() as conn:
                rows = {
                    table: [
                        tuple(r)
                        for r in (await conn.execute(text(f"SELECT * FROM {table} ORDER BY id")))
                    ]
                    for table in DATA_TABLES
                }
                for table in ("services", "countries"):
                    count = (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar()
                    rows[table] = [(count,)]
                return rows
        finally:
            await db.dispose()

    return asyncio.run(go())


def cli(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # An unhandled exception is a traceback for the operator, never a clear error.
        raise AssertionError(f"otphub {' '.join(args)} crashed") from result.exception
    return result


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def ok_json(*args: str) -> dict[str, Any]:
    result = ok(*args, "--json")
    return one_json_object(result.stdout)


def one_json_object(stdout: str) -> dict[str, Any]:
    """``--json``: exactly one JSON object on stdout, and nothing else."""
    lines = stdout.splitlines()
    assert len(lines) == 1, f"stdout must be one JSON object, got {stdout!r}"
    payload = json.loads(lines[0])
    assert isinstance(payload, dict), payload
    return payload


def refused(*args: str) -> str:
    """The command fails with a one-line message on stderr and prints nothing on stdout."""
    result = cli(*args)
    assert result.exit_code != 0, (result.stdout, result.stderr)
    assert result.stdout == "", f"nothing on stdout for an error, got {result.stdout!r}"
    message = result.stderr.strip()
    assert message, "an error must say what is wrong"
    assert len(message.splitlines()) == 1, f"one-line error expected, got {result.stderr!r}"
    assert "Traceback" not in message
    return message


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not healthy after 30 s: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then (if it hangs) SIGKILL to the process group this test started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError("the server did not stop on SIGTERM within 20 s") from None
    return int(proc.returncode)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The test's database, in the environment the command reads."""
    for name in list(os.environ):
        if name.startswith("OTPHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTPHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("OTPHUB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)  # no stray .env, and any file the command writes stays here
    return database_url


@pytest.fixture
def world(url: str) -> dict[str, int]:
    """A provider with an offer and a number, and a customer with money (made directly, in one
    runtime: the CLI's own success is tested elsewhere)."""

    async def build() -> dict[str, int]:
        rt = build_runtime(Settings())
        await rt.start(migrate_schema=False)
        try:
            provider = await accounts.add_provider(rt, name="Seller")
            await inventory.set_offer(
                rt, provider_id=provider.id, service="tg", country_id=0, price=50, payout=40
            )
            await inventory.add_numbers(
                rt, provider_id=provider.id, country_id=0, phones=["79000000001"]
            )
            customer = await accounts.add_customer(rt, name="Buyer", balance=1000)
        finally:
            await rt.close()
        return {"p": provider.id, "c": customer.id, "missing": 999_999}

    return asyncio.run(build())


def balance_of_customer(url: str, customer_id: int) -> int:
    rows = sql(
        url,
        "SELECT a.balance FROM accounts a JOIN customers c ON c.account_id = a.id WHERE c.id = :id",
        id=customer_id,
    )
    return int(rows[0][0])


# ---------------------------------------------------------------- init


def test_init_is_idempotent(url: str) -> None:
    before = snapshot(url)
    first = ok("init")
    assert first.stdout == "", "init's messages go to stderr"
    assert "database ready" in first.stderr
    after_first = snapshot(url)
    second = ok("init")
    assert second.stdout == ""
    assert first.stderr == second.stderr
    assert snapshot(url) == after_first == before  # the database was migrated already
    services, countries = after_first["services"][0][0], after_first["countries"][0][0]
    assert services > 0 and countries > 0
    assert f"({services} services, {countries} countries)" in first.stderr
    # and it still works as a database afterwards
    ok_json("customer", "add", "after init")


def test_init_creates_a_fresh_sqlite_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "new" / "dir" / "otphub.db"
    monkeypatch.setenv("OTPHUB_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("OTPHUB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    ok("init")
    assert path.exists()
    tables = {r[0] for r in sql(f"sqlite:///{path}", "SELECT name FROM sqlite_master")}
    assert set(DATA_TABLES) <= tables
    ok("init")
    assert ok_json("customer", "add", "first")["id"] == 1


def test_commands_before_init_fail_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "never-initialised.db"
    monkeypatch.setenv("OTPHUB_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("OTPHUB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    message = refused("customer", "add", "too early", "--json")
    assert "otphub init" in message
    # A mistyped path leaves no empty database file behind.
    assert not path.exists()


# ---------------------------------------------------------------- providers and customers


def test_provider_add(url: str) -> None:
    created = ok_json("provider", "add", "SIM bank one")
    assert set(created) == {"id", "key"}
    assert isinstance(created["id"], int) and created["id"] >= 1
    assert isinstance(created["key"], str) and KEY_SHAPE.fullmatch(created["key"])
    rows = sql(url, "SELECT id, name FROM providers")
    assert rows == [(created["id"], "SIM bank one")]

    human = ok("provider", "add", "SIM bank two")
    key = re.search(r"key \(shown once\): (\S+)", human.stdout)
    assert key is not None, human.stdout
    assert KEY_SHAPE.fullmatch(key.group(1))
    assert key.group(1) != created["key"]


def test_customer_add(url: str) -> None:
    created = ok_json("customer", "add", "Alice", "--balance", "10.00")
    assert set(created) == {"id", "api_key"}
    assert isinstance(created["id"], int)
    assert isinstance(created["api_key"], str) and KEY_SHAPE.fullmatch(created["api_key"])
    assert balance_of_customer(url, created["id"]) == 1000

    without_balance = ok_json("customer", "add", "Bob")
    assert without_balance["id"] != created["id"]
    assert without_balance["api_key"] != created["api_key"]
    assert balance_of_customer(url, without_balance["id"]) == 0

    human = ok("customer", "add", "Carol", "--balance", "0.01")
    match = re.search(r"customer (\d+) created; api_key \(shown once\): (\S+)", human.stdout)
    assert match is not None, human.stdout
    assert KEY_SHAPE.fullmatch(match.group(2))
    assert balance_of_customer(url, int(match.group(1))) == 1


def test_only_a_keyed_hash_of_each_key_is_stored(url: str) -> None:
    keys = [ok_json("provider", "add", f"P{i}")["key"] for i in range(3)]
    keys += [ok_json("customer", "add", f"C{i}", "--balance", "1.00")["api_key"] for i in range(3)]
    assert all(KEY_SHAPE.fullmatch(k) for k in keys)
    assert len(set(keys)) == len(keys)

    dump = json.dumps(snapshot(url), default=str)
    stored_hashes = [r[0] for r in sql(url, "SELECT key_hash FROM api_keys")]
    assert len(set(stored_hashes)) == len(keys)
    for key in keys:
        assert key not in dump, "the key text must not be stored"
        # an unkeyed hash would let a stolen database be checked against guessed keys
        for unkeyed in (
            hashlib.sha256(key.encode()).hexdigest(),
            hashlib.md5(key.encode()).hexdigest(),
            hashlib.sha1(key.encode()).hexdigest(),
        ):
            assert unkeyed not in dump
    for digest in stored_hashes:
        assert re.fullmatch(r"[0-9a-f]{64}", digest), digest


def test_customer_topup(url: str) -> None:
    customer = ok_json("customer", "add", "Alice", "--balance", "10.00")
    result = ok("customer", "topup", str(customer["id"]), "5.25")
    assert result.stdout == ""
    assert "15.25" in result.stderr
    assert balance_of_customer(url, customer["id"]) == 1525
    ok("customer", "topup", str(customer["id"]), "0.01")
    assert balance_of_customer(url, customer["id"]) == 1526
    assert "audit clean" in ok("audit").stderr


# ---------------------------------------------------------------- offers and numbers


def offers_of(url: str, provider_id: int) -> list[tuple[Any, ...]]:
    return sql(
        url,
        "SELECT service, country_id, price, payout FROM offers WHERE provider_id = :p "
        "ORDER BY service, country_id",
        p=provider_id,
    )


def test_offer_set_without_payout_pays_the_whole_price(url: str) -> None:
    provider = ok_json("provider", "add", "Seller")
    p = str(provider["id"])
    result = ok(
        "offer", "set", "--provider", p, "--service", "tg", "--country", "0", "--price", "0.50"
    )
    assert result.stdout == ""
    assert offers_of(url, provider["id"]) == [("tg", 0, 50, 50)]


def test_offer_set_with_payout_and_change(url: str) -> None:
    provider = ok_json("provider", "add", "Seller")
    p = str(provider["id"])
    args = ("offer", "set", "--provider", p, "--service", "wa", "--country", "2")
    ok(*args, "--price", "0.50", "--payout", "0.40")
    assert offers_of(url, provider["id"]) == [("wa", 2, 50, 40)]
    # setting the same offer again changes it, it does not add a second one
    ok(*args, "--price", "0.65", "--payout", "0")
    assert offers_of(url, provider["id"]) == [("wa", 2, 65, 0)]
    ok(*args, "--price", "0.70", "--payout", "0.70")
    assert offers_of(url, provider["id"]) == [("wa", 2, 70, 70)]
    ok(*args, "--price", "0.70")
    assert offers_of(url, provider["id"]) == [("wa", 2, 70, 70)]


def test_number_add(url: str) -> None:
    provider = ok_json("provider", "add", "Seller")
    p = str(provider["id"])
    result = ok(
        "number",
        "add",
        "--provider",
        p,
        "--country",
        "0",
        "--operator",
        "mts",
        "79000000001",
        "+7 (900) 000-00-02",
    )
    assert result.stdout == ""
    assert "2 numbers added" in result.stderr
    ok("number", "add", "--provider", p, "--country", "16", "447700900123")
    rows = sql(url, "SELECT phone, country_id, operator FROM numbers ORDER BY phone")
    assert rows == [
        ("447700900123", 16, "any"),
        ("79000000001", 0, "mts"),
        ("79000000002", 0, "mts"),
    ]
    again = ok("number", "add", "--provider", p, "--country", "0", "79000000001", "79000000003")
    assert "1 numbers added (1 known already)" in again.stderr
    assert len(sql(url, "SELECT id FROM numbers")) == 4


# ---------------------------------------------------------------- bad input changes nothing

OFFER = ("offer", "set", "--provider", "{p}", "--service", "tg", "--country", "0")


def offer_args(
    *, provider: str = "{p}", service: str = "tg", country: str = "0"
) -> tuple[str, ...]:
    where = ("--provider", provider, "--service", service, "--country", country)
    return ("offer", "set", *where, "--price", "0.50")


NUMBER = ("number", "add", "--provider", "{p}", "--country", "0")

BAD_INPUT: list[tuple[str, tuple[str, ...], str]] = [
    # (case, args, a word the message must contain)
    ("offer-unknown-provider", offer_args(provider="{missing}"), "provider"),
    ("offer-unknown-service", offer_args(service="nosuchsvc"), "service"),
    ("offer-unknown-country", offer_args(country="9999"), "country"),
    ("offer-malformed-price", (*OFFER, "--price", "abc"), "abc"),
    ("offer-comma-price", (*OFFER, "--price", "0,50"), "0,50"),
    ("offer-too-many-decimals", (*OFFER, "--price", "0.505"), "decimals"),
    ("offer-zero-price", (*OFFER, "--price", "0"), "0"),
    ("offer-zero-price-decimals", (*OFFER, "--price", "0.00"), "0.00"),
    ("offer-negative-price", (*OFFER, "--price=-0.50"), "-0.50"),
    ("offer-payout-above-price", (*OFFER, "--price", "0.50", "--payout", "0.60"), "payout"),
    ("offer-negative-payout", (*OFFER, "--price", "0.50", "--payout=-0.10"), "-0.10"),
    ("offer-malformed-payout", (*OFFER, "--price", "0.50", "--payout", "x"), "x"),
    ("offer-payout-decimals", (*OFFER, "--price", "0.50", "--payout", "0.405"), "decimals"),
    (
        "number-unknown-provider",
        ("number", "add", "--provider", "{missing}", "--country", "0", "79001234567"),
        "provider",
    ),
    (
        "number-unknown-country",
        ("number", "add", "--provider", "{p}", "--country", "9999", "79001234567"),
        "country",
    ),
    ("number-malformed", (*NUMBER, "7900abc4567"), "phone"),
    ("number-too-short", (*NUMBER, "7900"), "phone"),
    ("number-malformed-among-good", (*NUMBER, "79001234567", "79001234x"), "phone"),
    ("number-wrong-country", (*NUMBER, "447700900123"), "447700900123"),
    ("number-wrong-country-among-good", (*NUMBER, "79001234567", "447700900123"), "country"),
    (
        "number-malformed-operator",
        (*NUMBER, "--operator", "MTS Russia!", "79001234567"),
        "operator",
    ),
    ("customer-malformed-balance", ("customer", "add", "X", "--balance", "ten"), "ten"),
    ("customer-negative-balance", ("customer", "add", "X", "--balance=-1.00"), "-1.00"),
    ("customer-balance-decimals", ("customer", "add", "X", "--balance", "1.001"), "decimals"),
    ("customer-blank-name", ("customer", "add", "   "), "name"),
    ("provider-blank-name", ("provider", "add", "  "), "name"),
    ("provider-duplicate-name", ("provider", "add", "Seller"), "Seller"),
    ("topup-unknown-customer", ("customer", "topup", "{missing}", "5.00"), "customer"),
    ("topup-negative", ("customer", "topup", "--", "{c}", "-5.00"), "-5.00"),
    ("topup-zero", ("customer", "topup", "{c}", "0"), "0"),
    ("topup-malformed", ("customer", "topup", "{c}", "5,00"), "5,00"),
    ("topup-exponent", ("customer", "topup", "{c}", "1e3"), "1e3"),
    ("topup-decimals", ("customer", "topup", "{c}", "0.001"), "decimals"),
    # An id past any BIGINT reached the database as an out-of-range integer.
    ("revoke-huge-id", ("customer", "key", "revoke", "9" * 25), "no customer key"),
]


@pytest.mark.parametrize(
    ("args", "word"), [pytest.param(a, w, id=case) for case, a, w in BAD_INPUT]
)
def test_bad_input_is_refused_and_changes_nothing(
    url: str, world: dict[str, int], args: tuple[str, ...], word: str
) -> None:
    argv = [a.format(**world) for a in args]
    before = snapshot(url)
    message = refused(*argv)
    assert message.startswith("error:"), message
    assert word.lower() in message.lower(), message
    assert snapshot(url) == before


def test_json_refusal_prints_nothing_on_stdout(url: str, world: dict[str, int]) -> None:
    before = snapshot(url)
    refused("customer", "add", "X", "--balance", "1.001", "--json")
    refused("provider", "add", "Seller", "--json")
    assert snapshot(url) == before


def test_negative_topup_without_separator_changes_nothing(url: str, world: dict[str, int]) -> None:
    """``topup 1 -5.00`` reaches the amount check (not the option parser): a one-line error."""
    before = snapshot(url)
    message = refused("customer", "topup", str(world["c"]), "-5.00")
    assert "-5.00" in message
    assert snapshot(url) == before


# ---------------------------------------------------------------- audit


def test_audit_clean(url: str, world: dict[str, int]) -> None:
    ok("customer", "topup", str(world["c"]), "2.50")
    result = ok("audit")
    assert result.stdout == ""
    assert "audit clean" in result.stderr
    assert "wallets 12.50" in result.stderr


@pytest.mark.parametrize(
    ("column", "problem"),
    [
        ("balance", "account balance differs from its journal"),
        ("held", "held amount differs from the open holds"),
    ],
)
def test_audit_names_a_corrupted_ledger(
    url: str, world: dict[str, int], column: str, problem: str
) -> None:
    sql(
        url,
        f"UPDATE accounts SET {column} = {column} + 1 "
        "WHERE id = (SELECT account_id FROM customers WHERE id = :c)",
        c=world["c"],
    )
    result = cli("audit")
    assert result.exit_code != 0
    assert result.stdout == ""
    assert f"AUDIT FAILED: {problem}" in result.stderr, result.stderr
    account_id = sql(url, "SELECT account_id FROM customers WHERE id = :c", c=world["c"])[0][0]
    assert f"'id': {account_id}" in result.stderr


# ---------------------------------------------------------------- options


def test_database_url_option_overrides_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTPHUB_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere/never.db")
    created = ok_json("--database-url", url, "customer", "add", "via option", "--balance", "1.00")
    assert balance_of_customer(url, created["id"]) == 100
    assert not (tmp_path / "elsewhere").exists()


# ---------------------------------------------------------------- the real entry points


def run_process(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=60
    )


def test_entry_points(url: str, tmp_path: Path) -> None:
    init = run_process(OTPHUB, "init", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert init.stdout == ""
    assert "database ready" in init.stderr

    customer = run_process(
        sys.executable,
        "-m",
        "otphub",
        "customer",
        "add",
        "Alice",
        "--balance",
        "10.00",
        "--json",
        cwd=tmp_path,
    )
    assert customer.returncode == 0, customer.stderr
    created = one_json_object(customer.stdout)
    assert set(created) == {"id", "api_key"}
    assert KEY_SHAPE.fullmatch(created["api_key"])
    assert balance_of_customer(url, created["id"]) == 1000

    before = snapshot(url)
    bad = run_process(OTPHUB, "customer", "topup", "999999", "1.00", cwd=tmp_path)
    assert bad.returncode != 0
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "customer" in bad.stderr
    assert snapshot(url) == before


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_serves(url: str, tmp_path: Path, workers: int) -> None:
    customer = ok_json("customer", "add", "Alice", "--balance", "10.00")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                OTPHUB,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                f"{workers}",
            ],
            cwd=tmp_path,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_healthy(proc, base, log)
            with httpx.Client(base_url=base, timeout=10) as client:
                for _ in range(4):  # new connections: with 2 workers both get some
                    answer = client.get(
                        "/stubs/handler_api.php",
                        params={"api_key": customer["api_key"], "action": "getBalance"},
                        headers={"Connection": "close"},
                    )
                    assert answer.status_code == 200
                    assert answer.text == "ACCESS_BALANCE:10.00"
                bad = client.get(
                    "/stubs/handler_api.php", params={"api_key": "ohc_nope1234", "action": "x"}
                )
                assert bad.text == "BAD_KEY"
        finally:
            code = stop(proc)
    assert code in (0, -signal.SIGTERM), log.read_text()
    # a key must never reach the server's output (keys travel in query strings)
    assert customer["api_key"] not in log.read_text()
