"""The operator's dashboard: activations and journal rows by time, so that its charts read
the last hour or day only, however long the history; and the audit's recorded runs, so
that its page shows the last result instead of recomputing every balance at each visit.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 05:30:00

Both columns only grow with the id (a row's time is when it was written), so each index
is appended to at its end: little cost on the purchase path.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_activations_created", "activations", ["created_at"])
    op.create_index("ix_journal_created", "journal", ["created_at"])
    op.create_table(
        "audit_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("took_ms", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("totals", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_runs")),
    )


def downgrade() -> None:
    op.drop_table("audit_runs")
    op.drop_index("ix_journal_created", table_name="journal")
    op.drop_index("ix_activations_created", table_name="activations")
