"""An online copy of a SQLite database, and the checks of a copy (``otphub backup``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from otphub.domain import errors


def vacuum_into(source: Path, target: Path) -> None:
    """Write the state of one read transaction of ``source`` into the new file ``target``
    (``VACUUM INTO``), while other connections go on reading and writing."""
    try:
        with sqlite3.connect(source, timeout=30) as conn:
            conn.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.Error as exc:
        raise errors.OTPHubError(f"the copy failed: {exc}") from exc


def integrity(path: Path) -> str:
    """SQLite's verdict on the file: ``ok``, or what is wrong."""
    with sqlite3.connect(path) as conn:
        (verdict,) = conn.execute("PRAGMA integrity_check").fetchone()
    return str(verdict)


def row_counts(path: Path, tables: Sequence[str]) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in tables
        }
