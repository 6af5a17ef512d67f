"""The server secret and the files that hold codes and phone numbers.

Keys are stored as HMAC(secret, key): a new secret beside old keys turns every key into
BAD_KEY, and an empty secret is a key every deployment shares. So a secret is created
atomically with mode 0600, never empty or short, and never generated anew for a database
that already holds keys. The SQLite database, its WAL and its backups are 0600 too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from otphub import config
from otphub.cli import app
from otphub.config import SecretError, Settings
from otphub.db.engine import open_database
from otphub.services import accounts
from otphub.services.runtime import build_runtime

runner = CliRunner()


def cli(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"otphub {' '.join(args)} crashed") from result.exception
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def count_customers(url: str) -> int:
    async def go() -> int:
        db = open_database(url, pool_size=1)
        try:
            async with db.read() as conn:
                return int(
                    (await conn.execute(text("SELECT COUNT(*) FROM customers"))).scalar_one()
                )
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No OTPHUB_* setting from outside, and the usual umask (022), under which files
    created without an explicit mode are readable by everyone."""
    for name in list(os.environ):
        if name.startswith("OTPHUB_"):
            monkeypatch.delenv(name)
    previous = os.umask(0o022)
    try:
        yield monkeypatch
    finally:
        os.umask(previous)


# ---------------------------------------------------------------- the secret file


class Killed(BaseException):
    """The process dies here (nothing catches it on the way out)."""


def test_a_generated_secret_file_is_private_from_its_creation(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No window in which others may read it: a process that dies right after creating
    the file, before any chmod, leaves it 0600 (it was created 0644, then chmod'ed)."""

    def killed(*_args: object, **_kwargs: object) -> None:
        raise Killed("between creating the secret file and its chmod")

    environment.setattr(Path, "chmod", killed)
    environment.setattr(os, "chmod", killed)
    database = tmp_path / "otphub.db"
    settings = Settings(_env_file=None, database_url=f"sqlite:///{database}")  # type: ignore[call-arg]

    async def start() -> None:
        rt = build_runtime(settings)
        try:
            await rt.start()
        finally:
            await rt.close()

    with contextlib.suppress(Killed):
        asyncio.run(start())
    secret = tmp_path / "otphub.db.secret"
    assert oct(mode(secret)) == oct(0o600)
    assert len(secret.read_text()) >= 16


def test_a_secret_never_appears_half_written(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A crash while the secret is written leaves no secret file (the next start makes a
    whole one), never an empty or partial one."""
    real_write = os.write

    def crash_after_a_byte(fd: int, data: bytes) -> int:
        real_write(fd, data[:1])
        raise KeyboardInterrupt("killed while writing the secret")

    environment.setattr(os, "write", crash_after_a_byte)
    path = tmp_path / "otphub.secret"
    with pytest.raises(KeyboardInterrupt):
        config.create_secret_file(path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # nor a temporary file left behind


@pytest.mark.parametrize("content", ["", "\n", "abc", "x" * 15])
def test_an_empty_or_short_secret_file_is_refused(
    environment: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    database = tmp_path / "otphub.db"
    (tmp_path / "otphub.db.secret").write_text(content)
    settings = Settings(_env_file=None, database_url=f"sqlite:///{database}")  # type: ignore[call-arg]
    with pytest.raises(SecretError, match=r"otphub\.db\.secret is (empty|too short)"):
        build_runtime(settings)
    assert not database.exists()  # refused before anything is created


@pytest.mark.parametrize("value", ["", "   ", "short", "x" * 15])
def test_an_empty_or_short_otphub_secret_is_refused(
    environment: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/o.db", secret=value)  # type: ignore[call-arg]
    with pytest.raises(SecretError, match="OTPHUB_SECRET is set but has"):
        build_runtime(settings)


def test_the_cli_names_an_empty_secret_file(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "otphub.db"
    environment.setenv("OTPHUB_DATABASE_URL", f"sqlite:///{database}")
    environment.chdir(tmp_path)
    assert cli("init").exit_code == 0
    (tmp_path / "otphub.db.secret").write_text("")  # emptied by a crash or a bad restore
    refused = cli("customer", "add", "alice")
    assert refused.exit_code == 1
    assert f"{tmp_path}/otphub.db.secret is empty" in refused.stderr
    assert "OTPHUB_SECRET" in refused.stderr
    assert count_customers(f"sqlite:///{database}") == 0


# ---------------------------------------------------------------- never a second secret


def _database_and_secret(backend: str, database_url: str, home: Path) -> Path:
    """Where the secret of a deployment run from ``home`` lives."""
    if backend == "sqlite":
        return Path(database_url.removeprefix("sqlite:///") + ".secret")
    return home / "var" / "otphub.secret"


def test_no_new_secret_for_a_database_that_holds_keys(
    environment: pytest.MonkeyPatch, tmp_path: Path, database_url: str, backend: str
) -> None:
    """Run from another directory (PostgreSQL), or with the secret file gone (SQLite), the
    CLI once generated a new secret and issued keys the server answered with BAD_KEY."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    environment.setenv("OTPHUB_DATABASE_URL", database_url)
    environment.chdir(home)
    first = cli("customer", "add", "alice", "--json")
    assert first.exit_code == 0, first.stderr
    secret = _database_and_secret(backend, database_url, home)
    assert mode(secret) == 0o600
    if backend == "sqlite":
        secret.rename(tmp_path / "kept-elsewhere.secret")  # the file is lost
    environment.chdir(elsewhere)
    looked_at = _database_and_secret(backend, database_url, elsewhere)
    for command in (("customer", "add", "bob"), ("provider", "add", "rack"), ("init",)):
        refused = cli(*command)
        assert refused.exit_code == 1, (command, refused.stderr)
        assert str(looked_at) in refused.stderr, refused.stderr
        assert "OTPHUB_SECRET" in refused.stderr
        assert "holds API keys" in refused.stderr
        assert not looked_at.exists()
    assert count_customers(database_url) == 1
    # With the secret given, everything works again, and the first key is still valid.
    kept = secret if backend == "postgresql" else tmp_path / "kept-elsewhere.secret"
    environment.setenv("OTPHUB_SECRET", kept.read_text())
    assert cli("customer", "add", "bob").exit_code == 0

    async def authenticate() -> int:
        rt = build_runtime(Settings())
        await rt.start(migrate_schema=False)
        try:
            key = str(json.loads(first.stdout)["api_key"])
            return (await accounts.authenticate_customer(rt, key)).id
        finally:
            await rt.close()

    assert asyncio.run(authenticate()) == 1


def test_init_says_where_the_secret_lives(
    environment: pytest.MonkeyPatch, tmp_path: Path, database_url: str, backend: str
) -> None:
    environment.setenv("OTPHUB_DATABASE_URL", database_url)
    environment.chdir(tmp_path)
    if backend == "sqlite":
        # A database that is new: the template copy of the fixture is migrated already.
        Path(database_url.removeprefix("sqlite:///")).unlink()
    created = cli("init")
    assert created.exit_code == 0, created.stderr
    secret = _database_and_secret(backend, database_url, tmp_path)
    assert f"server secret: {secret} (generated now)" in created.stderr
    assert "every node and every backup needs this secret" in created.stderr
    again = cli("init")
    assert f"server secret: {secret};" in again.stderr
    environment.setenv("OTPHUB_SECRET", "a-secret-of-sixteen-or-more")
    given = cli("init")
    assert "server secret: OTPHUB_SECRET;" in given.stderr


# ---------------------------------------------------------------- files with codes and phones


def test_the_sqlite_database_and_its_wal_are_private(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "data" / "otphub.db"
    settings = Settings(_env_file=None, database_url=f"sqlite:///{database}")  # type: ignore[call-arg]

    async def write_and_look() -> dict[str, int]:
        rt = build_runtime(settings)
        await rt.start()
        try:
            await accounts.add_customer(rt, name="alice", balance=100)
            return {path.name: mode(path) for path in database.parent.iterdir()}
        finally:
            await rt.close()

    modes = asyncio.run(write_and_look())
    assert {"otphub.db", "otphub.db-wal", "otphub.db-shm", "otphub.db.secret"} <= set(modes)
    assert all(m == 0o600 for m in modes.values()), {n: oct(m) for n, m in modes.items()}


def test_a_backup_is_private(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "otphub.db"
    environment.setenv("OTPHUB_DATABASE_URL", f"sqlite:///{database}")
    environment.chdir(tmp_path)
    assert cli("init").exit_code == 0
    assert cli("customer", "add", "alice", "--balance", "1.00").exit_code == 0
    copies = tmp_path / "copies"
    made = cli("backup", str(copies / "otphub-backup.db"))
    assert made.exit_code == 0, made.stderr
    modes = {path.name: mode(path) for path in copies.iterdir()}
    assert modes == {"otphub-backup.db": 0o600}


def test_a_failed_backup_leaves_no_file(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "otphub.db"
    environment.setenv("OTPHUB_DATABASE_URL", f"sqlite:///{database}")
    environment.chdir(tmp_path)
    assert cli("init").exit_code == 0
    target = tmp_path / "copies" / "otphub-backup.db"
    database.write_bytes(b"not a database")  # VACUUM INTO fails
    failed = cli("backup", str(target))
    assert failed.exit_code != 0
    assert not target.exists()


# ---------------------------------------------------------------- small leaks


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:hunter2-password@db.internal/otphub",
        "mssql+pyodbc://sa:hunter2-password@db/otphub",
        "root:hunter2-password@db.internal/otphub",
    ],
)
def test_an_unsupported_database_url_never_shows_its_password(
    environment: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    environment.chdir(tmp_path)
    environment.setenv("OTPHUB_SECRET", "a-secret-of-sixteen-or-more")
    refused = cli("--database-url", url, "init")
    assert refused.exit_code == 1
    assert "unsupported database URL" in refused.stderr
    assert "hunter2" not in refused.stderr + refused.stdout


def test_key_revoke_points_to_the_id() -> None:
    helped = cli("customer", "key", "revoke", "--help")
    assert "prefer the id" in " ".join(helped.stdout.split())
