"""Tables, constraints and indexes. The constraints are the last line of defence:
even a buggy statement cannot sell a number twice or resolve a hold twice.

Times are Unix seconds (BIGINT), money is integer minor units (BIGINT).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from otphub.db import states

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

services = Table(
    "services",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("name", String(128), nullable=False),
)

countries = Table(
    "countries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name_en", String(128), nullable=False),
    Column("iso2", String(2), nullable=False),
    Column("phone_prefix", String(8), nullable=False),
)

# Ledger accounts. Customer wallets and provider payables keep their balance in the row;
# the operator's revenue and the external world are derived from the journal, so that no
# purchase ever updates a row every other purchase also updates.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),
    # credits minus debits of posted transfers
    Column("balance", BigInteger, nullable=False, server_default=text("0")),
    # sum of pending holds (customer wallets only)
    Column("held", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("kind IN ('customer', 'provider', 'revenue', 'external')", name="kind"),
    CheckConstraint("held >= 0", name="held_not_negative"),
    CheckConstraint("kind <> 'customer' OR balance >= held", name="wallet_not_overdrawn"),
    CheckConstraint("kind <> 'provider' OR held = 0", name="provider_no_holds"),
    CheckConstraint(
        "kind IN ('customer', 'provider') OR (balance = 0 AND held = 0)", name="derived_kinds"
    ),
    # One revenue account and one external account per deployment.
    Index(
        "uq_accounts_singleton_kind",
        "kind",
        unique=True,
        sqlite_where=text("kind IN ('revenue', 'external')"),
        postgresql_where=text("kind IN ('revenue', 'external')"),
    ),
)

# The kinds of journal rows (see db/ledger.py Kind), and which of them name the row they
# resolve: capture and release a hold, refund a capture (migration 0004 added the refund,
# clawback and adjustment kinds).
JOURNAL_KINDS_CHECK = (
    "kind IN ('topup', 'withdraw', 'hold', 'capture', 'release', 'share', 'payout', "
    "'refund', 'clawback', 'adjustment')"
)
JOURNAL_RESOLUTION_CHECK = "(kind IN ('capture', 'release', 'refund')) = (resolves_id IS NOT NULL)"

# The append-only double-entry journal. Triggers (see the migration) refuse UPDATE and DELETE.
journal = Table(
    "journal",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("debit_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # capture/release rows name the hold they resolve, refund rows the capture they
    # reverse; UNIQUE makes a second resolution of the same hold, or a second refund of
    # the same capture, impossible, whatever the code above does.
    Column("resolves_id", Id, ForeignKey("journal.id"), nullable=True, unique=True),
    Column("activation_id", Id, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("note", String(200), nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
    CheckConstraint(JOURNAL_KINDS_CHECK, name="kind"),
    CheckConstraint(JOURNAL_RESOLUTION_CHECK, name="resolution"),
    Index("ix_journal_activation", "activation_id"),
    Index("ix_journal_debit", "debit_account_id"),
    Index("ix_journal_credit", "credit_account_id"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, unique=True),
    Column("banned_until", BigInteger, nullable=True),
    # overrides OTPHUB_MAX_LIVE_ACTIVATIONS; 0 = no cap
    Column("max_live", Integer, nullable=True),
    # overrides OTPHUB_RATE_LIMIT (requests per second per key); 0 = no limit
    Column("rate_limit", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

providers = Table(
    "providers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # share of recent activations that were finished, in per mille (smoothed: a provider
    # without history has 500); breaks price ties. See inventory.refresh_delivery_scores.
    Column("delivery_score", Integer, nullable=False, server_default=text("500")),
    Column("created_at", BigInteger, nullable=False),
)

offers = Table(
    "offers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("provider_id", Id, ForeignKey("providers.id"), nullable=False),
    Column("country_id", Integer, ForeignKey("countries.id"), nullable=False),
    Column("service", String(16), ForeignKey("services.code"), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("payout", BigInteger, nullable=False),
    # seconds an activation of this offer lives; NULL: OTPHUB_ACTIVATION_TTL
    Column("ttl", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    UniqueConstraint("provider_id", "country_id", "service"),
    CheckConstraint("ttl IS NULL OR ttl > 0", name="ttl_positive"),
    CheckConstraint("price > 0", name="price_positive"),
    CheckConstraint("payout >= 0 AND payout <= price", name="payout_within_price"),
    Index("ix_offers_service_country", "service", "country_id"),
)

numbers = Table(
    "numbers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("provider_id", Id, ForeignKey("providers.id"), nullable=False),
    Column("country_id", Integer, ForeignKey("countries.id"), nullable=False),
    Column("operator", String(32), nullable=False, server_default=text("'any'")),
    Column("phone", String(16), nullable=False),
    Column("online", Boolean, nullable=False, server_default=text("true")),
    # true while the number has a live activation; the claim flips it compare-and-set
    Column("in_use", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("provider_id", "phone"),
    Index("ix_numbers_free", "provider_id", "country_id", "in_use", "online"),
    # The claim's index: the free numbers of a provider and country, in id order.
    Index(
        "ix_numbers_claim",
        "provider_id",
        "country_id",
        "id",
        sqlite_where=text("online = 1 AND in_use = 0"),
        postgresql_where=text("online = true AND in_use = false"),
    ),
)

activations = Table(
    "activations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("provider_id", Id, ForeignKey("providers.id"), nullable=False),
    Column("number_id", Id, ForeignKey("numbers.id"), nullable=False),
    Column("service", String(16), nullable=False),
    Column("country_id", Integer, nullable=False),
    Column("operator", String(32), nullable=False),
    Column("phone", String(16), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("payout", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("code", Text, nullable=True),  # the latest code
    Column("sms_text", Text, nullable=True),  # the latest SMS
    Column("sms_at", BigInteger, nullable=True),
    Column("ready_at", BigInteger, nullable=True),  # setStatus 1
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("order_id", Text, nullable=True),
    Column("ref", Text, nullable=True),
    # Every state name here comes from the enum (db/states.py).
    CheckConstraint(states.ANY, name="state"),
    CheckConstraint(f"{states.CODELESS} OR code IS NOT NULL", name="code_kept"),
    UniqueConstraint("customer_id", "order_id"),
    # At most one live activation per number.
    Index(
        "uq_activations_live_number",
        "number_id",
        unique=True,
        sqlite_where=text(states.LIVE),
        postgresql_where=text(states.LIVE),
    ),
    # A number finished for a service is never sold for that service again.
    Index(
        "uq_activations_finished_number_service",
        "number_id",
        "service",
        unique=True,
        sqlite_where=text(states.FINISHED),
        postgresql_where=text(states.FINISHED),
    ),
    # The sweeper's queue: live activations by deadline.
    Index(
        "ix_activations_live_deadline",
        "expires_at",
        sqlite_where=text(states.LIVE),
        postgresql_where=text(states.LIVE),
    ),
    Index("ix_activations_customer_created", "customer_id", "created_at"),
    # A customer's live activations by deadline: resolving them on touch, the cap.
    Index(
        "ix_activations_customer_live",
        "customer_id",
        "expires_at",
        sqlite_where=text(states.LIVE),
        postgresql_where=text(states.LIVE),
    ),
    Index("ix_activations_provider_created", "provider_id", "created_at"),
)

# Every SMS a provider pushed, matched to an activation or kept as unmatched.
sms = Table(
    "sms",
    metadata,
    Column("id", Id, primary_key=True),
    Column("provider_id", Id, ForeignKey("providers.id"), nullable=False),
    Column("provider_sms_id", BigInteger, nullable=False),
    Column("phone", String(16), nullable=False),
    Column("phone_from", Text, nullable=True),
    Column("text", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("activation_id", Id, ForeignKey("activations.id"), nullable=True),
    Column("received_at", BigInteger, nullable=False),
    UniqueConstraint("provider_id", "provider_sms_id"),
    Index("ix_sms_activation", "activation_id"),
)

# API keys of customers and providers; several per owner, for rotation. Only a keyed hash
# of each key is stored. A revoked key stops working on every server process at once,
# because every request looks its key up here.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", Id, nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),  # the key's first characters, for lists
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    CheckConstraint("owner_kind IN ('customer', 'provider')", name="owner_kind"),
    Index("ix_api_keys_owner", "owner_kind", "owner_id"),
)

# Periodic background jobs that must run once per period across every process and node,
# not once per process: each job's next run, claimed compare-and-set (see db/schedules.py).
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_run_at", BigInteger, nullable=False),
)
