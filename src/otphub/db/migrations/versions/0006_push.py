"""Codes without polling, dialects, API v1 and referrals: customers' dialect and referral
code, webhooks, idempotency keys of API v1 purchases, the SQLite change feed between
processes, the outbox's ``failed_at``, and the journal's ``referral`` kind.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 02:10:00

Every existing customer gets the default dialect and a referral code of its own. The
journal's kind CHECK changes as in 0004 (SQLite rebuilds the journal table, once).
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OLD_KINDS = (
    "kind IN ('topup', 'withdraw', 'hold', 'capture', 'release', 'share', 'payout', "
    "'refund', 'clawback', 'adjustment')"
)
_NEW_KINDS = (
    "kind IN ('topup', 'withdraw', 'hold', 'capture', 'release', 'share', 'payout', "
    "'refund', 'clawback', 'adjustment', 'referral')"
)
_DIALECTS = "dialect IN ('sms-activate', 'grizzly', 'herosms')"


def referral_code() -> str:
    """Ten lower-case letters and digits: short enough to share, not worth guessing."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


def upgrade() -> None:
    op.execute(
        "ALTER TABLE customers ADD COLUMN dialect VARCHAR(16) DEFAULT 'sms-activate' NOT NULL "
        f"CONSTRAINT ck_customers_dialect CHECK ({_DIALECTS})"
    )
    op.add_column("customers", sa.Column("referral_code", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM customers ORDER BY id"))]
    for customer_id in ids:
        bind.execute(
            sa.text("UPDATE customers SET referral_code = :code WHERE id = :id"),
            {"code": referral_code(), "id": customer_id},
        )
    op.create_index("uq_customers_referral_code", "customers", ["referral_code"], unique=True)
    op.add_column("outbox", sa.Column("failed_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "webhooks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_webhooks_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_customer", "webhooks", ["customer_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("activation_id", _ID, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_idempotency_keys_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    op.create_table(
        "activation_changes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("activation_id", _ID, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_changes")),
    )
    _replace_kinds(_OLD_KINDS, _NEW_KINDS)


def _replace_kinds(old: str, new: str) -> None:
    if op.get_context().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_journal_kind"), "journal", type_="check")
        op.create_check_constraint(op.f("ck_journal_kind"), "journal", new)
        return
    bind = op.get_bind()
    declared = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'journal'")
    ).scalar_one()
    old_check = f"CONSTRAINT ck_journal_kind CHECK ({old})"
    if old_check not in declared:
        raise RuntimeError("the journal's kind CHECK is not the one this migration expects")
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar_one()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'journal'"),
        {"sql": declared.replace(old_check, f"CONSTRAINT ck_journal_kind CHECK ({new})")},
    )
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))
    problems = bind.execute(sa.text("PRAGMA integrity_check")).scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"the journal's new CHECK: integrity check says {problems[:3]}")


def downgrade() -> None:
    # Refused while referral rows exist: the journal is history, and they would break the
    # older CHECK (PostgreSQL checks the rows; on SQLite the check below does).
    if op.get_context().dialect.name == "sqlite":
        referrals = op.get_bind().execute(
            sa.text("SELECT count(*) FROM journal WHERE kind = 'referral'")
        )
        if referrals.scalar_one():
            raise RuntimeError("the journal holds referral rows: cannot downgrade below 0006")
    _replace_kinds(_NEW_KINDS, _OLD_KINDS)
    op.drop_table("activation_changes")
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_webhooks_customer", table_name="webhooks")
    op.drop_table("webhooks")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failed_at")
    op.drop_index("uq_customers_referral_code", table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("referral_code")
        # The CHECK first: SQLite's copy of the table would keep it and name a column
        # that is gone (PostgreSQL would drop it with the column).
        batch.drop_constraint(op.f("ck_customers_dialect"), type_="check")
        batch.drop_column("dialect")
