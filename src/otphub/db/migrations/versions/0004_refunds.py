"""Refunds, clawbacks and adjustments in the journal.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 20:45:00

An operator refunds a finished activation with new journal rows, never by editing old ones:
a ``refund`` row (revenue -> customer, the price) names the capture it reverses in
``resolves_id``, whose UNIQUE constraint then refuses a second refund of the same activation
exactly as it refuses a second resolution of a hold; a ``clawback`` row (provider ->
revenue) takes the provider's payout back. ``adjustment`` rows are the operator's signed
corrections of a wallet (external <-> customer).

Only the two CHECK constraints of the journal change. PostgreSQL replaces them in place. SQLite
cannot alter a CHECK, so the journal is rebuilt: copied into a new table (on a large journal
this takes a while, once, inside the migration's transaction), with its indexes and its
append-only triggers created again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = "kind IN ('topup', 'withdraw', 'hold', 'capture', 'release', 'share', 'payout')"
_NEW_KINDS = (
    "kind IN ('topup', 'withdraw', 'hold', 'capture', 'release', 'share', 'payout', "
    "'refund', 'clawback', 'adjustment')"
)
_OLD_RESOLUTION = "(kind IN ('capture', 'release')) = (resolves_id IS NOT NULL)"
_NEW_RESOLUTION = "(kind IN ('capture', 'release', 'refund')) = (resolves_id IS NOT NULL)"


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_INDEXES = {
    "ix_journal_activation": "activation_id",
    "ix_journal_credit": "credit_account_id",
    "ix_journal_debit": "debit_account_id",
}
_COLUMNS = (
    "id, kind, debit_account_id, credit_account_id, amount, resolves_id, activation_id, "
    "created_at, note"
)


def _replace_checks(kinds: str, resolution: str) -> None:
    if op.get_context().dialect.name != "sqlite":
        for name, condition in (("ck_journal_kind", kinds), ("ck_journal_resolution", resolution)):
            op.drop_constraint(op.f(name), "journal", type_="check")
            op.create_check_constraint(op.f(name), "journal", condition)
        return
    _rebuild_sqlite_journal(kinds, resolution)


def _rebuild_sqlite_journal(kinds: str, resolution: str) -> None:
    """SQLite's way to change a CHECK: a new table. The old one is renamed first (SQLite
    then points its self-reference at the new name), so that the new ``journal`` is created
    under its own name and its rows reference rows of itself: the usual order (copy, drop
    the old, rename the copy) leaves the copy's foreign keys pointing at the dropped table,
    and a transaction cannot turn foreign keys off."""
    op.execute("ALTER TABLE journal RENAME TO journal_old")
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER journal_no_{verb}")
    for index in _INDEXES:
        op.execute(f"DROP INDEX {index}")
    op.create_table(
        "journal",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("debit_account_id", _ID, nullable=False),
        sa.Column("credit_account_id", _ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("resolves_id", _ID, nullable=True),
        sa.Column("activation_id", _ID, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.CheckConstraint(resolution, name=op.f("ck_journal_resolution")),
        sa.CheckConstraint(kinds, name=op.f("ck_journal_kind")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_journal_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_journal_two_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["accounts.id"],
            name=op.f("fk_journal_credit_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"], ["accounts.id"], name=op.f("fk_journal_debit_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["resolves_id"], ["journal.id"], name=op.f("fk_journal_resolves_id_journal")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
        sa.UniqueConstraint("resolves_id", name=op.f("uq_journal_resolves_id")),
    )
    op.execute(f"INSERT INTO journal ({_COLUMNS}) SELECT {_COLUMNS} FROM journal_old ORDER BY id")
    op.execute("DROP TABLE journal_old")
    for index, column in _INDEXES.items():
        op.create_index(index, "journal", [column], unique=False)
    # The journal stays append-only (the triggers of 0001, on the new table).
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER journal_no_{verb.lower()} BEFORE {verb} ON journal "
            "BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END"
        )


def upgrade() -> None:
    _replace_checks(_NEW_KINDS, _NEW_RESOLUTION)


def downgrade() -> None:
    # Fails (the database refuses) while refund, clawback or adjustment rows exist: the
    # journal is history, and those rows cannot be expressed in the older schema.
    _replace_checks(_OLD_KINDS, _OLD_RESOLUTION)
