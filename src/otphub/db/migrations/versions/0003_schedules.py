"""Background jobs that run once per period across every process and node.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 19:45:00

The providers' delivery records were recomputed once a minute by every server process: with
ten nodes of four workers, forty times the same aggregate over a week of activations. Each
job now has a row here, and a process runs the job only if it moves the row's next run
ahead (compare-and-set), so of all the processes exactly one runs it per period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
    )


def downgrade() -> None:
    op.drop_table("schedules")
