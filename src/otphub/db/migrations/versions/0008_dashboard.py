"""The operator's dashboard: activations and journal rows by time, so that its charts read
the last hour or day only, however long the history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 05:30:00

Both columns only grow with the id (a row's time is when it was written), so each index
is appended to at its end: little cost on the purchase path.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_activations_created", "activations", ["created_at"])
    op.create_index("ix_journal_created", "journal", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_journal_created", table_name="journal")
    op.drop_index("ix_activations_created", table_name="activations")
