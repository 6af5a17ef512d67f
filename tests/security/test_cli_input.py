"""Operator input through the CLI: phones and amounts are ASCII digits, read at once.

``7٩٥٨٤١٢٣٤٥٦`` (a 7, then Arabic-Indic digits) was stored as a phone that no SMS push
can ever match, and ``١٠.٠٠`` was read as an amount of 10.00.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from otphub.cli import app
from otphub.db.engine import open_database

runner = CliRunner()
SECRET = "security-cli-test-secret"


def cli(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"otphub {' '.join(args)} crashed") from result.exception
    return result


def rows(url: str, statement: str) -> list[tuple[object, ...]]:
    async def go() -> list[tuple[object, ...]]:
        db = open_database(url, pool_size=1)
        try:
            async with db.read() as conn:
                return [tuple(row) for row in (await conn.execute(text(statement))).all()]
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for name in list(os.environ):
        if name.startswith("OTPHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTPHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("OTPHUB_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    return database_url


@pytest.mark.parametrize("phone", ["7٩٥٨٤١٢٣٤٥٦", "7９５８４１２３４５６", "7958412345६"])
def test_number_add_takes_ascii_digits_only(url: str, phone: str) -> None:
    assert cli("provider", "add", "rack").exit_code == 0
    refused = cli("number", "add", "--provider", "1", "--country", "0", phone)
    assert refused.exit_code == 1
    assert "malformed phone number" in refused.stderr
    assert rows(url, "SELECT phone FROM numbers") == []


@pytest.mark.parametrize("amount", ["١٠.٠٠", "１０", "1e999999999", "9" * 5000])
def test_amounts_take_ascii_digits_only_and_any_length_is_refused_at_once(
    url: str, amount: str
) -> None:
    refused = cli("customer", "add", "alice", "--balance", amount)
    assert refused.exit_code == 1
    assert "amount" in refused.stderr
    assert rows(url, "SELECT id FROM customers") == []
