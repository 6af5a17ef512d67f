"""Fixtures: every storage and API test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (``OTPHUB_TEST_POSTGRES_URL`` to change). When it
is unreachable the PostgreSQL half is skipped with a loud notice, except under CI=true,
where that is a failure.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from otphub.logs import configure_logging
from otphub.services import logins as login_service
from tests import support

# Every otphub process a test starts (they inherit this environment) opens at most
# 3 x 4 + 4 + 1 = 17 PostgreSQL connections instead of 41: two nodes of one test, a
# long-lived upstream OTPHub and the other worker's tests then fit in PostgreSQL's default
# max_connections of 100 (CI's), which two nodes at 41 each once overran.
os.environ.setdefault("OTPHUB_DATABASE_POOL_SIZE", "4")

# argon2id at its production cost (64 MiB, 3 passes: about 150 ms a hash on a 2-core
# machine) at every in-process sign-up and sign-in doubled the console tests' time. In this
# process it is still argon2id, at 8 MiB and 1 pass; every otphub process the tests start
# (the demo, the servers of the browser's demo flow, the benchmark) hashes at full cost, and
# tests/unit/test_logins.py checks that the server's own hasher keeps argon2's defaults.
PRODUCTION_HASHER = login_service._HASHER
login_service._HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
login_service._DUMMY_HASH = login_service._HASHER.hash("not a password of anyone")

BACKENDS = ("sqlite", "postgresql")
_pg_state: dict[str, object] = {}


def pytest_report_header(config: pytest.Config) -> str:
    return f"OTPHub tests on SQLite and PostgreSQL ({support.PG_ADMIN_URL})"


@pytest.fixture(scope="session", autouse=True)
def json_logs() -> None:
    """The server's own logging set-up (JSON lines): structlog's default console renderer
    would draw every logged exception as a rich traceback with every local variable,
    seconds of CPU inside the live server's event loop."""
    configure_logging("info")


@pytest.fixture(scope="session")
def live_server() -> Iterator[support.LiveServer]:
    server = support.LiveServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    support.run_apart(support.migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    if not support.pg_reachable():
        message = f"PostgreSQL unreachable at {support.PG_ADMIN_URL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the PostgreSQL half must run)")
        warnings.warn(f"{message}: SKIPPING EVERY POSTGRESQL TEST", stacklevel=1)
        pytest.skip(message + ": PostgreSQL half skipped")
    url = support.create_pg_database()
    support.run_apart(support.migrate(url))
    yield url
    support.drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database on the test's backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return support.sqlite_copy(template, tmp_path)
    url: str = request.getfixturevalue("pg_url")
    support.run_apart(support.empty_pg(url))
    return url


@pytest.fixture
def hub_settings() -> dict[str, object]:
    """Override to change the deployment's settings for a module or test."""
    return {}


@pytest.fixture
def hub(
    live_server: support.LiveServer,
    database_url: str,
    backend: str,
    hub_settings: dict[str, object],
    request: pytest.FixtureRequest,
) -> Iterator[support.Hub]:
    """A deployment on a clean database, served on 127.0.0.1. After the test, the audit
    must be clean: every test that moves money is checked by the auditor."""
    deployment = support.install(live_server, database_url, backend, **hub_settings)
    try:
        yield deployment
        if request.node.get_closest_marker("corrupts_ledger") is None:
            deployment.assert_audit_clean()
    finally:
        support.uninstall(deployment)


@pytest.fixture
def server_processes_turn(backend: str) -> Iterator[None]:
    """Tests that start ``otphub serve`` processes on PostgreSQL take turns across pytest's
    workers: each process may open 17 connections (OTPHUB_DATABASE_POOL_SIZE=4, set above),
    and a PostgreSQL with default settings allows 100 in all (CI's does)."""
    if backend != "postgresql":
        yield
        return
    lock = Path(tempfile.gettempdir()) / "otphub-tests-postgresql-servers.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
