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
    "'refund', 'clawback', 'adjustment', 'referral')"
)
DIALECTS_CHECK = "dialect IN ('sms-activate', 'grizzly', 'herosms')"
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
    # The dashboard's windows (migration 0008).
    Index("ix_journal_created", "created_at"),
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
    # The shapes of the customer API this customer's client expects (customer-api.md,
    # "Dialects"): only a few answers differ.
    Column("dialect", String(16), nullable=False, server_default=text("'sms-activate'")),
    # What others pass as ``ref`` on getNumber to name this customer as their referrer.
    Column("referral_code", String(32), nullable=True),
    # The web console's login (NULL: an API-only customer). The email is stored folded to
    # lower case (domain/logins.py), so the unique index is case-insensitive in effect.
    Column("email", String(254), nullable=True),
    Column("password_hash", String(255), nullable=True),
    CheckConstraint(DIALECTS_CHECK, name="dialect"),
    Index("uq_customers_referral_code", "referral_code", unique=True),
    Index("uq_customers_email", "email", unique=True),
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
    # median seconds from purchase to the first SMS over the same window (NULL: no SMS yet);
    # breaks ties between equal delivery scores. See inventory.refresh_delivery_scores.
    Column("sms_seconds", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Where its numbers come from (domain/supply.py ProviderKind): 'local' inventory that
    # OTPHub holds, an SMSHub-protocol 'agent' it calls, an 'upstream' service it buys from.
    Column("kind", String(16), nullable=False, server_default=text("'local'")),
    # The agent's URL, or the upstream's handler URL (handler_api.php); NULL for local.
    Column("endpoint_url", Text, nullable=True),
    # Sealed under the server secret (domain/sealing.py): an agent's own provider key, which
    # OTPHub sends in every request to it; an upstream's API key.
    Column("sealed_secret", Text, nullable=True),
    # Upstream pricing: cost x (1 + markup_bp / 10,000) + markup_amount, rounded up.
    Column("markup_bp", Integer, nullable=True),
    Column("markup_amount", BigInteger, nullable=True),
    # Health of a remote provider: when its last poll succeeded, since when it is down
    # (NULL: up) and why. A provider that is down sells nothing.
    Column("polled_at", BigInteger, nullable=True),
    Column("down_since", BigInteger, nullable=True),
    Column("last_error", String(200), nullable=True),
    # An upstream's balance there, minor units, as last read.
    Column("remote_balance", BigInteger, nullable=True),
    CheckConstraint("kind IN ('local', 'agent', 'upstream')", name="kind"),
    CheckConstraint("kind = 'local' OR endpoint_url IS NOT NULL", name="remote_endpoint"),
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
    # Priced by the upstream poller from the upstream's cost and the provider's markup; an
    # operator's `offer set` makes it explicit (false), and the poller leaves it alone.
    Column("auto_priced", Boolean, nullable=False, server_default=text("false")),
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
    # The agent's or the upstream's id of this activation; NULL for local inventory.
    Column("remote_id", String(64), nullable=True),
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
    # The dashboard's windows (migration 0008).
    Index("ix_activations_created", "created_at"),
    # Cancelled activations of a number for a service (the cancelled-numbers rule: never
    # the same number again to the customer who cancelled it; retired after MAX_CANCELS).
    Index(
        "ix_activations_cancelled_number",
        "number_id",
        "service",
        "customer_id",
        sqlite_where=text(states.CANCELLED),
        postgresql_where=text(states.CANCELLED),
    ),
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

# A remote provider's stock as its last successful poll saw it: per (country, operator,
# service), how many numbers it can hand out now, and for an upstream the cost it asks.
remote_stock = Table(
    "remote_stock",
    metadata,
    Column("provider_id", Id, ForeignKey("providers.id"), primary_key=True),
    Column("country_id", Integer, ForeignKey("countries.id"), primary_key=True),
    Column("operator", String(32), primary_key=True),
    Column("service", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("cost", BigInteger, nullable=True),  # upstream only: its price, minor units
    Column("polled_at", BigInteger, nullable=False),
    CheckConstraint("count >= 0", name="count_not_negative"),
    CheckConstraint("cost IS NULL OR cost >= 0", name="cost_not_negative"),
    Index("ix_remote_stock_service_country", "service", "country_id"),
)

# Purchases from a remote provider, between their durable phases (GUIDE "Talking to the
# outside"): (1) the customer's money is held (``hold_id``, a hold without an activation)
# and the row committed 'pending'; (2) the provider is called, outside any transaction;
# (3) 'attached': the hold is released and the new activation's own hold placed in one
# transaction, or 'failed': the hold is released. A pending row whose ``resolve_after`` has
# passed was left by a crash: start-up and the sweeper resolve it.
remote_purchases = Table(
    "remote_purchases",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("provider_id", Id, ForeignKey("providers.id"), nullable=False),
    Column("offer_id", Id, ForeignKey("offers.id"), nullable=False),
    Column("service", String(16), nullable=False),
    Column("country_id", Integer, nullable=False),
    Column("operator", String(32), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("payout", BigInteger, nullable=False),
    Column("hold_id", Id, ForeignKey("journal.id"), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("activation_id", Id, ForeignKey("activations.id"), nullable=True, unique=True),
    Column("remote_id", String(64), nullable=True),
    Column("order_id", Text, nullable=True),
    Column("ref", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("resolve_after", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("note", String(200), nullable=True),
    CheckConstraint("state IN ('pending', 'attached', 'failed')", name="state"),
    CheckConstraint("(state = 'attached') = (activation_id IS NOT NULL)", name="attached"),
    Index(
        "ix_remote_purchases_pending",
        "resolve_after",
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
)

# What must reach the other side (FINISH_ACTIVATION to agents, setStatus to upstreams, and
# later webhooks): written in the transaction of the change it reports, delivered by a
# worker with retries and backoff until the other side acknowledges it. ``dedupe_key``
# makes writing the same message twice a no-op.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("dedupe_key", String(160), nullable=False, unique=True),
    Column("provider_id", Id, ForeignKey("providers.id"), nullable=True),
    Column("activation_id", Id, nullable=True),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", String(200), nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    # Set when a message with a bounded number of attempts (webhooks: 8) got none through.
    Column("failed_at", BigInteger, nullable=True),
    Index(
        "ix_outbox_due",
        "next_attempt_at",
        sqlite_where=text("delivered_at IS NULL"),
        postgresql_where=text("delivered_at IS NULL"),
    ),
)

# Numbers retired for a service: cancelled OTPHUB_MAX_CANCELS times for it, or reported by
# the agent's side as used. Never sold for that service again.
retired_numbers = Table(
    "retired_numbers",
    metadata,
    Column("number_id", Id, ForeignKey("numbers.id"), primary_key=True),
    Column("service", String(16), primary_key=True),
    Column("retired_at", BigInteger, nullable=False),
)

# The SMSHub protocol names countries by strings: besides every catalog country's English
# name in lower case without spaces or punctuation, these names (the protocol's own
# spellings, ``england``, ``usa``, and whatever the operator adds) map to a country.
country_aliases = Table(
    "country_aliases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("country_id", Integer, ForeignKey("countries.id"), nullable=False),
)

# A customer's webhook URLs (at most 3 live ones). The secret signs each delivery, so it is
# kept sealed (domain/sealing.py) rather than hashed; a removed URL keeps its row for the
# outbox messages that name it.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("sealed_secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("removed_at", BigInteger, nullable=True),
    Index("ix_webhooks_customer", "customer_id"),
)

# API v1's Idempotency-Key on purchases: the first answer to (customer, key), kept 24 hours;
# the same key with another body is refused.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("customer_id", Id, ForeignKey("customers.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # None: the purchase is in progress
    Column("response", Text, nullable=True),
    Column("activation_id", Id, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

# On SQLite, what tells the other processes of the machine that an activation changed
# (PostgreSQL uses NOTIFY instead): each process reads the rows past the last id it saw.
# Written in the transaction of the change; old rows are pruned.
activation_changes = Table(
    "activation_changes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("activation_id", Id, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)


# The people who run the deployment from the web console's /admin (``otphub operator add``).
operators = Table(
    "operators",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("uq_operators_email", "email", unique=True),
)

# The web console's signed-in sessions: the cookie holds a random token, this table only its
# SHA-256 (a copy of the table signs nobody in). Exactly one of customer and operator.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=True),
    Column("operator_id", Id, ForeignKey("operators.id"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    CheckConstraint("(customer_id IS NULL) <> (operator_id IS NULL)", name="one_subject"),
    Index("ix_console_sessions_expires", "expires_at"),
)

# Failed console sign-ins, by email and by client address: what limits guessing across every
# process of a fleet (a counter in one process would not). Old rows are pruned.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_login_failures_email", "email", "at"),
    Index("ix_login_failures_address", "address", "at"),
)

# Every change an operator makes (console or shell), with who and when; written in the
# transaction of the change, so a change is never without its record.
operator_actions = Table(
    "operator_actions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("operator_id", Id, ForeignKey("operators.id"), nullable=True),  # NULL: the shell
    Column("actor", String(254), nullable=False),  # the operator's email, or "shell"
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", Text, nullable=False),  # JSON object
    Column("at", BigInteger, nullable=False),
    Index("ix_operator_actions_at", "at"),
)


# The audit's runs from the operator's console (who, when, how long, what it found): its
# page shows the last one; a run recomputes every balance, too slow for every visit. Only
# the newest few are kept.
audit_runs = Table(
    "audit_runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(254), nullable=False),
    Column("took_ms", Integer, nullable=False),
    Column("problems", Text, nullable=False),  # JSON list of lines
    Column("totals", Text, nullable=False),  # JSON object of minor units
)
