"""The web console's logins given from the shell (settings.md): ``otphub customer add NAME
--email E --password-stdin``, ``otphub customer set ID --email E --password-stdin`` and
``otphub operator add EMAIL --password-stdin``, on SQLite and PostgreSQL.

The password is read from the first line of standard input, never from the command line;
``--json`` prints exactly one JSON object on stdout; a refusal is one line on stderr, exit 1,
and changes nothing. What the commands store must then sign in (services.logins.sign_in).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from otphub.cli import app
from otphub.config import Settings
from otphub.domain import errors
from otphub.domain.logins import Subject
from otphub.services import accounts
from otphub.services import logins as login_service
from otphub.services.runtime import Runtime, build_runtime
from tests.cli.test_cli import one_json_object, snapshot, sql

PASSWORD = "correct horse battery"
LOGIN_TABLES = ("operators", "console_sessions")

runner = CliRunner()


def cli(stdin: str | None, *args: str) -> Result:
    result = runner.invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"otphub {' '.join(args)} crashed") from result.exception
    return result


def ok_json(stdin: str | None, *args: str) -> dict[str, Any]:
    result = cli(stdin, *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    if stdin:
        assert stdin.strip() not in result.stdout + result.stderr, "the password is never shown"
    return one_json_object(result.stdout)


def refused(stdin: str | None, *args: str) -> str:
    """Exit 1, nothing on stdout, one line on stderr (returned)."""
    result = cli(stdin, *args)
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    message = result.stderr.strip()
    assert message and len(message.splitlines()) == 1, result.stderr
    assert "Traceback" not in message
    if stdin and stdin.strip():
        assert stdin.strip() not in message, "the password is never shown"
    return message


def everything(url: str) -> dict[str, Any]:
    """Every row a login command may change."""
    rows: dict[str, Any] = dict(snapshot(url))
    for table in LOGIN_TABLES:
        rows[table] = sql(url, f"SELECT * FROM {table} ORDER BY 1")
    return rows


def with_runtime(use: Any) -> Any:
    async def go() -> Any:
        rt: Runtime = build_runtime(Settings())
        await rt.start(migrate_schema=False)
        try:
            return await use(rt)
        finally:
            await rt.close()

    return asyncio.run(go())


def sign_in(email: str, password: str = PASSWORD) -> login_service.Session:
    async def go(rt: Runtime) -> login_service.Session:
        return await login_service.sign_in(rt, email=email, password=password, address="::1")

    session: login_service.Session = with_runtime(go)
    return session


def signed_subject(token: str) -> Subject | None:
    async def go(rt: Runtime) -> Subject | None:
        signed = await login_service.signed(rt, token)
        return None if signed is None else signed.subject

    subject: Subject | None = with_runtime(go)
    return subject


def stored_hash(url: str, table: str, email: str) -> str:
    rows = sql(url, f"SELECT password_hash FROM {table} WHERE email = :e", e=email)
    assert len(rows) == 1, rows
    return str(rows[0][0])


# ---------------------------------------------------------------- customer add


def test_customer_add_with_a_login_signs_in_and_keeps_its_api_key(url: str) -> None:
    created = ok_json(
        PASSWORD + "\n",
        "customer",
        "add",
        "Ann",
        "--email",
        " Ann@Example.COM ",
        "--password-stdin",
    )
    assert set(created) == {"id", "api_key", "email"}
    assert created["email"] == "ann@example.com"
    session = sign_in("ANN@example.com")
    assert session.subject == Subject("customer", created["id"], "ann@example.com")
    assert signed_subject(session.token) == session.subject
    assert stored_hash(url, "customers", "ann@example.com").startswith("$argon2id$")

    async def key_owner(rt: Runtime) -> int:
        return (await accounts.authenticate_customer(rt, created["api_key"])).id

    assert with_runtime(key_owner) == created["id"]


def test_customer_add_reads_only_the_first_line_of_stdin(url: str) -> None:
    # A Windows line end is not part of the password; later lines are not read.
    created = ok_json(
        PASSWORD + "\r\nsecond line\n",
        "customer",
        "add",
        "Ann",
        "--email",
        "ann@example.com",
        "--password-stdin",
    )
    assert sign_in("ann@example.com").subject.id == created["id"]
    with pytest.raises(errors.SignInRefused):
        sign_in("ann@example.com", PASSWORD + "\r")
    # Spaces inside a password are kept.
    ok_json(
        "a password with spaces\n",
        "customer",
        "add",
        "Bob",
        "--email",
        "bob@example.com",
        "--password-stdin",
    )
    assert sign_in("bob@example.com", "a password with spaces").subject.kind == "customer"


def test_customer_add_without_json_says_so_on_one_line(url: str) -> None:
    result = cli(
        PASSWORD + "\n", "customer", "add", "Ann", "--email", "ann@example.com", "--password-stdin"
    )
    assert result.exit_code == 0, result.stderr
    assert "console login: ann@example.com" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_customer_add_without_a_login_still_works(url: str) -> None:
    created = ok_json(None, "customer", "add", "Ann")
    assert set(created) == {"id", "api_key"}
    assert sql(url, "SELECT email, password_hash FROM customers") == [(None, None)]


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("short\n", "at least 10 characters"),
        ("x" * 257 + "\n", "at most 256"),
        (" " + PASSWORD + "\n", "must not start or end with a space"),
        ("", "no password on standard input"),
        ("\n", "no password on standard input"),
    ],
)
def test_customer_add_refuses_a_bad_password(url: str, stdin: str, message: str) -> None:
    before = everything(url)
    said = refused(
        stdin, "customer", "add", "Ann", "--email", "ann@example.com", "--password-stdin"
    )
    assert said.startswith("error: ") and message in said
    assert everything(url) == before


def test_customer_add_refuses_a_bad_email(url: str) -> None:
    before = everything(url)
    said = refused(PASSWORD + "\n", "customer", "add", "Ann", "--email", "ann", "--password-stdin")
    assert "not an email address" in said
    assert everything(url) == before


def test_email_and_password_stdin_go_together(url: str) -> None:
    before = everything(url)
    for args in (
        ("customer", "add", "Ann", "--email", "ann@example.com"),
        ("customer", "add", "Ann", "--password-stdin"),
        ("customer", "set", "1", "--email", "ann@example.com"),
        ("customer", "set", "1", "--password-stdin"),
    ):
        said = refused(PASSWORD + "\n", *args)
        assert "--password-stdin" in said and "--email" in said, (args, said)
    # The operator's command: the password comes from stdin only.
    said = refused(PASSWORD + "\n", "operator", "add", "root@example.com")
    assert "--password-stdin" in said
    # Never from the command line.
    result = cli(None, "operator", "add", "root@example.com", "--password", PASSWORD)
    assert result.exit_code != 0
    assert everything(url) == before


# ---------------------------------------------------------------- customer set


def test_customer_set_gives_a_login_and_ends_the_old_sessions(
    url: str, world: dict[str, int]
) -> None:
    customer_id = world["c"]
    assert sql(url, "SELECT email FROM customers WHERE id = :c", c=customer_id) == [(None,)]
    done = ok_json(
        PASSWORD + "\n",
        "customer",
        "set",
        str(customer_id),
        "--email",
        "Buyer@Example.com",
        "--password-stdin",
    )
    assert done == {"id": customer_id, "email": "buyer@example.com"}
    first = sign_in("buyer@example.com")
    assert first.subject == Subject("customer", customer_id, "buyer@example.com")
    # A new password (same email): the open session ends, the old password fails.
    changed = ok_json(
        "another password\n",
        "customer",
        "set",
        str(customer_id),
        "--email",
        "buyer@example.com",
        "--password-stdin",
    )
    assert changed == {"id": customer_id, "email": "buyer@example.com"}
    assert signed_subject(first.token) is None
    with pytest.raises(errors.SignInRefused):
        sign_in("buyer@example.com")
    assert sign_in("buyer@example.com", "another password").subject.id == customer_id
    # The balance and the rest of the customer are untouched.
    assert sql(url, "SELECT name FROM customers WHERE id = :c", c=customer_id) == [("Buyer",)]


def test_customer_set_with_a_dialect_and_a_login_at_once(url: str, world: dict[str, int]) -> None:
    done = ok_json(
        PASSWORD + "\n",
        "customer",
        "set",
        str(world["c"]),
        "--dialect",
        "grizzly",
        "--email",
        "buyer@example.com",
        "--password-stdin",
    )
    assert done["email"] == "buyer@example.com" and done["id"] == world["c"]
    assert "dialect" in done
    assert sign_in("buyer@example.com").subject.id == world["c"]


def test_customer_set_refuses_a_missing_customer(url: str, world: dict[str, int]) -> None:
    before = everything(url)
    said = refused(
        PASSWORD + "\n",
        "customer",
        "set",
        str(world["missing"]),
        "--email",
        "nobody@example.com",
        "--password-stdin",
    )
    assert f"no customer with id {world['missing']}" in said
    assert everything(url) == before


def test_customer_set_refuses_a_short_password(url: str, world: dict[str, int]) -> None:
    before = everything(url)
    said = refused(
        "too short\n",
        "customer",
        "set",
        str(world["c"]),
        "--email",
        "buyer@example.com",
        "--password-stdin",
    )
    assert "at least 10 characters" in said
    assert everything(url) == before


# ---------------------------------------------------------------- operator add


def test_operator_add_signs_in_to_admin(url: str) -> None:
    created = ok_json(PASSWORD + "\n", "operator", "add", "Root@Example.com", "--password-stdin")
    assert set(created) == {"id", "email"} and created["email"] == "root@example.com"
    session = sign_in("root@example.com")
    assert session.subject == Subject("operator", created["id"], "root@example.com")
    assert stored_hash(url, "operators", "root@example.com").startswith("$argon2id$")
    human = cli("another password\n", "operator", "add", "ops@example.com", "--password-stdin")
    assert human.exit_code == 0, human.stderr
    assert "ops@example.com" in human.stdout and "/admin" in human.stdout


def test_operator_add_refuses_a_short_password(url: str) -> None:
    before = everything(url)
    said = refused("123456789\n", "operator", "add", "root@example.com", "--password-stdin")
    assert "at least 10 characters" in said
    assert everything(url) == before


# ---------------------------------------------------------------- one email, one account


def test_an_email_in_use_is_refused_by_every_command(url: str, world: dict[str, int]) -> None:
    ok_json(
        PASSWORD + "\n", "customer", "add", "Ann", "--email", "ann@example.com", "--password-stdin"
    )
    ok_json(PASSWORD + "\n", "operator", "add", "root@example.com", "--password-stdin")
    before = everything(url)
    attempts: list[tuple[str, ...]] = []
    for email in ("ANN@example.com", "root@EXAMPLE.com"):
        attempts += [
            ("customer", "add", "Other", "--email", email, "--password-stdin"),
            ("operator", "add", email, "--password-stdin"),
            ("customer", "set", str(world["c"]), "--email", email, "--password-stdin"),
        ]
    for args in attempts:
        said = refused(PASSWORD + "\n", *args)
        assert "already used by another account" in said, (args, said)
    assert everything(url) == before


def test_a_refused_login_leaves_the_dialect_unchanged(url: str, world: dict[str, int]) -> None:
    # ``customer set`` changes nothing when any part is refused.
    ok_json(PASSWORD + "\n", "operator", "add", "root@example.com", "--password-stdin")
    before = sql(url, "SELECT dialect, email FROM customers WHERE id = :c", c=world["c"])
    said = refused(
        PASSWORD + "\n",
        "customer",
        "set",
        str(world["c"]),
        "--dialect",
        "grizzly",
        "--email",
        "root@example.com",
        "--password-stdin",
    )
    assert "already used" in said
    assert sql(url, "SELECT dialect, email FROM customers WHERE id = :c", c=world["c"]) == before
