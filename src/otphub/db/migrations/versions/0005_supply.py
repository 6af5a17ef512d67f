"""Supply: agent and upstream providers, remote stock, purchases in durable phases, the
outbox, and numbers retired for a service.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:20:00

New columns are added in place (both databases accept ``ADD COLUMN`` with a default and a
named CHECK), so no table is rebuilt and existing rows read as local providers, explicit
offers and local activations.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CANCELLED = "state = 'cancelled'"


def upgrade() -> None:
    is_sqlite = op.get_bind().dialect.name == "sqlite"
    false = "0" if is_sqlite else "false"
    op.execute(
        "ALTER TABLE providers ADD COLUMN kind VARCHAR(16) DEFAULT 'local' NOT NULL "
        "CONSTRAINT ck_providers_kind CHECK (kind IN ('local', 'agent', 'upstream'))"
    )
    op.execute(
        "ALTER TABLE providers ADD COLUMN endpoint_url TEXT "
        "CONSTRAINT ck_providers_remote_endpoint CHECK (kind = 'local' OR endpoint_url IS NOT NULL)"
    )
    op.add_column("providers", sa.Column("sealed_secret", sa.Text(), nullable=True))
    op.add_column("providers", sa.Column("sms_seconds", sa.Integer(), nullable=True))
    op.add_column("providers", sa.Column("markup_bp", sa.Integer(), nullable=True))
    op.add_column("providers", sa.Column("markup_amount", sa.BigInteger(), nullable=True))
    op.add_column("providers", sa.Column("polled_at", sa.BigInteger(), nullable=True))
    op.add_column("providers", sa.Column("down_since", sa.BigInteger(), nullable=True))
    op.add_column("providers", sa.Column("last_error", sa.String(length=200), nullable=True))
    op.add_column("providers", sa.Column("remote_balance", sa.BigInteger(), nullable=True))
    op.add_column(
        "offers",
        sa.Column("auto_priced", sa.Boolean(), server_default=sa.text(false), nullable=False),
    )
    op.add_column("activations", sa.Column("remote_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_activations_cancelled_number",
        "activations",
        ["number_id", "service", "customer_id"],
        sqlite_where=sa.text(_CANCELLED),
        postgresql_where=sa.text(_CANCELLED),
    )
    op.create_table(
        "remote_stock",
        sa.Column("provider_id", _ID, nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=True),
        sa.Column("polled_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_remote_stock_count_not_negative")),
        sa.CheckConstraint(
            "cost IS NULL OR cost >= 0", name=op.f("ck_remote_stock_cost_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_remote_stock_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(
            ["country_id"], ["countries.id"], name=op.f("fk_remote_stock_country_id_countries")
        ),
        sa.PrimaryKeyConstraint(
            "provider_id", "country_id", "operator", "service", name=op.f("pk_remote_stock")
        ),
    )
    op.create_index("ix_remote_stock_service_country", "remote_stock", ["service", "country_id"])
    op.create_table(
        "remote_purchases",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("provider_id", _ID, nullable=False),
        sa.Column("offer_id", _ID, nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=32), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("payout", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", _ID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("activation_id", _ID, nullable=True),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.Text(), nullable=True),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("resolve_after", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'attached', 'failed')", name=op.f("ck_remote_purchases_state")
        ),
        sa.CheckConstraint(
            "(state = 'attached') = (activation_id IS NOT NULL)",
            name=op.f("ck_remote_purchases_attached"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_remote_purchases_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_remote_purchases_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_remote_purchases_offer_id_offers")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["journal.id"], name=op.f("fk_remote_purchases_hold_id_journal")
        ),
        sa.ForeignKeyConstraint(
            ["activation_id"],
            ["activations.id"],
            name=op.f("fk_remote_purchases_activation_id_activations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_purchases")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_remote_purchases_hold_id")),
        sa.UniqueConstraint("activation_id", name=op.f("uq_remote_purchases_activation_id")),
    )
    op.create_index(
        "ix_remote_purchases_pending",
        "remote_purchases",
        ["resolve_after"],
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("provider_id", _ID, nullable=True),
        sa.Column("activation_id", _ID, nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_outbox_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_table(
        "retired_numbers",
        sa.Column("number_id", _ID, nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("retired_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"], ["numbers.id"], name=op.f("fk_retired_numbers_number_id_numbers")
        ),
        sa.PrimaryKeyConstraint("number_id", "service", name=op.f("pk_retired_numbers")),
    )
    op.create_table(
        "country_aliases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["country_id"], ["countries.id"], name=op.f("fk_country_aliases_country_id_countries")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_country_aliases")),
    )


def downgrade() -> None:
    op.drop_table("country_aliases")
    op.drop_table("retired_numbers")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_remote_purchases_pending", table_name="remote_purchases")
    op.drop_table("remote_purchases")
    op.drop_index("ix_remote_stock_service_country", table_name="remote_stock")
    op.drop_table("remote_stock")
    op.drop_index("ix_activations_cancelled_number", table_name="activations")
    with op.batch_alter_table("activations") as batch:
        batch.drop_column("remote_id")
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("auto_priced")
    with op.batch_alter_table("providers") as batch:
        for column in (
            "remote_balance",
            "last_error",
            "down_since",
            "polled_at",
            "markup_amount",
            "markup_bp",
            "sealed_secret",
            "sms_seconds",
            "endpoint_url",
            "kind",
        ):
            batch.drop_column(column)
