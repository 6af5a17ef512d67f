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
cannot alter a CHECK, so the journal is rebuilt (copied into a new table; on a large journal
this takes a while, once) and its append-only triggers are created again. The copy runs with
foreign keys deferred to the commit: the new table's rows name their holds in the old one
until the old one is dropped and the new one takes its name.
"""

from collections.abc import Sequence

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


def _replace_checks(kinds: str, resolution: str) -> None:
    if op.get_context().dialect.name != "sqlite":
        for name, condition in (("ck_journal_kind", kinds), ("ck_journal_resolution", resolution)):
            op.drop_constraint(op.f(name), "journal", type_="check")
            op.create_check_constraint(op.f(name), "journal", condition)
        return
    op.execute("PRAGMA defer_foreign_keys = ON")  # reset by SQLite at the commit
    with op.batch_alter_table("journal", recreate="always") as batch:
        for name, condition in (("ck_journal_kind", kinds), ("ck_journal_resolution", resolution)):
            batch.drop_constraint(op.f(name), type_="check")
            batch.create_check_constraint(op.f(name), condition)
    # The rebuild dropped the old table's triggers: the journal stays append-only.
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
