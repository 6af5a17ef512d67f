"""An index for claiming numbers in id order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 17:58:00

PostgreSQL walked the primary key in id order and filtered every number of every provider
to find the first free one of the offer (13.8 ms per purchase at 100,000 numbers, growing
with the table). With the free numbers of each provider and country indexed in id order,
the claim reads one index entry.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_numbers_claim",
        "numbers",
        ["provider_id", "country_id", "id"],
        unique=False,
        sqlite_where=sa.text("online = 1 AND in_use = 0"),
        postgresql_where=sa.text("online = true AND in_use = false"),
    )


def downgrade() -> None:
    op.drop_index("ix_numbers_claim", table_name="numbers")
