"""``otphub backup``: an online, consistent copy of a SQLite database.

``VACUUM INTO`` writes the state of one read transaction into a new file while the
server keeps serving; the copy is then checked with ``PRAGMA integrity_check``. On
PostgreSQL the standard tools do this job better (pg_dump, or base backups with WAL
archiving), so OTPHub does not reimplement them.

The copy is created with mode 0600 before SQLite writes into it: like the database, it
holds codes and phone numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

from otphub.config import Settings
from otphub.db import backup
from otphub.domain import errors


def backup_sqlite(settings: Settings, target: Path) -> dict[str, int]:
    source = settings.sqlite_path()
    if source is None:
        raise errors.InvalidInput(
            "backup copies SQLite databases; for PostgreSQL use pg_dump "
            "(or base backups with WAL archiving), see the README"
        )
    if not source.exists():
        raise errors.NotFound(f"no database at {source}")
    if target.exists():
        raise errors.InvalidInput(f"{target} exists already; a backup never overwrites")
    target.parent.mkdir(parents=True, exist_ok=True)
    # VACUUM INTO accepts an empty file: create it private first, exclusively (a backup
    # never overwrites, even one that appeared since the check above).
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError as exc:
        raise errors.InvalidInput(f"{target} exists already; a backup never overwrites") from exc
    try:
        backup.vacuum_into(source, target)
    except BaseException:
        target.unlink(missing_ok=True)  # no empty or partial copy left behind
        raise
    verdict = backup.integrity(target)
    if verdict != "ok":
        raise errors.OTPHubError(f"the copy failed its integrity check: {verdict}")
    return backup.row_counts(target, ("customers", "activations", "journal", "sms"))
