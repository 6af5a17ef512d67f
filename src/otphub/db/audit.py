"""The auditor's queries: every rule of the ledger as a query that returns the rows that
break it (an empty result means the rule holds), and the totals that must balance. They
trust no stored balance: each is recomputed from the append-only journal.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, select, text

from otphub.db import states
from otphub.db.engine import Conn
from otphub.db.ledger import POSTED_KINDS
from otphub.db.schema import audit_runs
from otphub.domain.activation import LIVE_STATES, State

_POSTED = ", ".join(f"'{k.value}'" for k in POSTED_KINDS)
# The states of the activation aliased ``a``, from the enum (see states.py).
_A_LIVE = states.state_in(LIVE_STATES, "a.state")
_A_FINISHED = states.state_in({State.FINISHED}, "a.state")
_A_CANCELLED = states.state_in({State.CANCELLED}, "a.state")

# Each query returns rows that are wrong; an empty result means the rule holds.
_CHECKS: dict[str, str] = {
    "account balance differs from its journal": f"""
        SELECT a.id, a.kind, a.balance AS stored,
               COALESCE(c.total, 0) - COALESCE(d.total, 0) AS derived
        FROM accounts a
        LEFT JOIN (SELECT credit_account_id AS id, SUM(amount) AS total FROM journal
                   WHERE kind IN ({_POSTED}) GROUP BY credit_account_id) c ON c.id = a.id
        LEFT JOIN (SELECT debit_account_id AS id, SUM(amount) AS total FROM journal
                   WHERE kind IN ({_POSTED}) GROUP BY debit_account_id) d ON d.id = a.id
        WHERE a.kind IN ('customer', 'provider')
          AND a.balance <> COALESCE(c.total, 0) - COALESCE(d.total, 0)""",
    "held amount differs from the open holds": """
        SELECT a.id, a.held AS stored, COALESCE(h.total, 0) AS derived
        FROM accounts a
        LEFT JOIN (SELECT j.debit_account_id AS id, SUM(j.amount) AS total FROM journal j
                   WHERE j.kind = 'hold'
                     AND NOT EXISTS (SELECT 1 FROM journal r WHERE r.resolves_id = j.id)
                   GROUP BY j.debit_account_id) h ON h.id = a.id
        WHERE a.held <> COALESCE(h.total, 0)""",
    "wallet overdrawn": """
        SELECT id, balance, held FROM accounts
        WHERE kind = 'customer' AND (balance < held OR held < 0)""",
    "resolution does not match its hold": """
        SELECT r.id, r.kind, r.resolves_id FROM journal r
        LEFT JOIN journal h ON h.id = r.resolves_id
        WHERE r.kind IN ('capture', 'release')
          AND (h.id IS NULL OR h.kind <> 'hold' OR h.amount <> r.amount
               OR h.debit_account_id <> r.debit_account_id
               OR h.credit_account_id <> r.credit_account_id
               OR (h.activation_id IS NULL) <> (r.activation_id IS NULL)
               OR h.activation_id <> r.activation_id)""",
    # Remote purchases (services/remote_purchase.py): their hold has no activation while
    # the provider is called; it belongs to exactly one purchase (UNIQUE hold_id makes it
    # at most one), is open exactly while the purchase is pending, and is released, never
    # captured. An attached purchase's activation is the customer's, at the same price.
    "hold without activation that no remote purchase owns": """
        SELECT j.id, j.amount FROM journal j
        LEFT JOIN remote_purchases p ON p.hold_id = j.id
        WHERE j.kind = 'hold' AND j.activation_id IS NULL AND p.id IS NULL""",
    "remote purchase hold does not match the purchase": """
        SELECT p.id, p.state, r.kind AS resolution FROM remote_purchases p
        JOIN customers c ON c.id = p.customer_id
        LEFT JOIN journal h ON h.id = p.hold_id
        LEFT JOIN journal r ON r.resolves_id = h.id
        WHERE h.id IS NULL OR h.kind <> 'hold' OR h.activation_id IS NOT NULL
           OR h.amount <> p.price OR h.debit_account_id <> c.account_id
           OR (p.state = 'pending') <> (r.id IS NULL)
           OR (r.id IS NOT NULL AND r.kind <> 'release')""",
    "attached remote purchase differs from its activation": """
        SELECT p.id, p.activation_id FROM remote_purchases p
        LEFT JOIN activations a ON a.id = p.activation_id
        WHERE p.state = 'attached'
          AND (a.id IS NULL OR a.price <> p.price OR a.customer_id <> p.customer_id
               OR a.provider_id <> p.provider_id OR a.payout <> p.payout
               OR COALESCE(a.remote_id, '') <> COALESCE(p.remote_id, '-'))""",
    "activation without exactly one hold": """
        SELECT a.id, COUNT(h.id) AS holds FROM activations a
        LEFT JOIN journal h ON h.activation_id = a.id AND h.kind = 'hold'
        GROUP BY a.id HAVING COUNT(h.id) <> 1""",
    "hold amount differs from the activation price": """
        SELECT a.id, a.price, h.amount FROM activations a
        JOIN journal h ON h.activation_id = a.id AND h.kind = 'hold'
        WHERE h.amount <> a.price""",
    "hold resolution does not match the activation state": f"""
        SELECT a.id, a.state, r.kind AS resolution FROM activations a
        JOIN journal h ON h.activation_id = a.id AND h.kind = 'hold'
        LEFT JOIN journal r ON r.resolves_id = h.id
        WHERE NOT (({_A_LIVE} AND r.id IS NULL)
                OR ({_A_FINISHED} AND r.kind = 'capture')
                OR ({_A_CANCELLED} AND r.kind = 'release'))""",
    "provider share differs from the payout": f"""
        SELECT a.id, a.state, a.payout, COALESCE(s.total, 0) AS paid FROM activations a
        LEFT JOIN (SELECT activation_id, SUM(amount) AS total FROM journal
                   WHERE kind = 'share' GROUP BY activation_id) s ON s.activation_id = a.id
        WHERE COALESCE(s.total, 0) <> CASE WHEN {_A_FINISHED} THEN a.payout ELSE 0 END""",
    "share paid to another provider": """
        SELECT a.id FROM activations a
        JOIN journal s ON s.activation_id = a.id AND s.kind = 'share'
        JOIN providers p ON p.id = a.provider_id
        WHERE s.credit_account_id <> p.account_id""",
    # Disputes: a refund reverses exactly one capture (the UNIQUE resolves_id makes it
    # at most one), and takes back exactly the provider's shares of that activation.
    "refund does not match its capture": """
        SELECT r.id, r.resolves_id, r.amount FROM journal r
        LEFT JOIN journal c ON c.id = r.resolves_id
        WHERE r.kind = 'refund'
          AND (c.id IS NULL OR c.kind <> 'capture' OR c.amount <> r.amount
               OR c.debit_account_id <> r.credit_account_id
               OR c.credit_account_id <> r.debit_account_id
               OR COALESCE(c.activation_id, -1) <> COALESCE(r.activation_id, -2))""",
    "clawback differs from the refunded shares": """
        SELECT a.id, COALESCE(s.total, 0) AS shared, COALESCE(k.total, 0) AS clawed,
               r.id AS refund FROM activations a
        LEFT JOIN (SELECT activation_id, SUM(amount) AS total FROM journal
                   WHERE kind = 'share' GROUP BY activation_id) s ON s.activation_id = a.id
        LEFT JOIN (SELECT j.activation_id, SUM(j.amount) AS total FROM journal j
                   JOIN accounts d ON d.id = j.debit_account_id AND d.kind = 'provider'
                   WHERE j.kind = 'clawback' GROUP BY j.activation_id) k
               ON k.activation_id = a.id
        LEFT JOIN journal r ON r.activation_id = a.id AND r.kind = 'refund'
        WHERE COALESCE(k.total, 0)
              <> CASE WHEN r.id IS NULL THEN 0 ELSE COALESCE(s.total, 0) END""",
    # A clawback from a wallet takes back the referral of a refunded activation
    # (ledger.take_back_referral): from the wallet it was paid to.
    "clawback not taken from the activation's provider": """
        SELECT k.id, k.activation_id FROM journal k
        LEFT JOIN activations a ON a.id = k.activation_id
        LEFT JOIN providers p ON p.id = a.provider_id
        WHERE k.kind = 'clawback' AND (p.id IS NULL OR k.debit_account_id <> p.account_id)
          AND NOT EXISTS (SELECT 1 FROM journal f WHERE f.kind = 'referral'
                          AND f.activation_id = k.activation_id
                          AND f.credit_account_id = k.debit_account_id)""",
    # Referrals (lifecycle._pay_referrer): revenue -> the wallet of the customer whose
    # referral code the activation's ref is (never the buyer), at most once per captured
    # activation, and at most its margin (the share in force may have changed since: the
    # exact percent is not checked). Taken back only after a refund, and at most once.
    "referral not from revenue to the referrer named by the activation": """
        SELECT f.id, f.activation_id, f.credit_account_id FROM journal f
        JOIN accounts d ON d.id = f.debit_account_id
        LEFT JOIN activations a ON a.id = f.activation_id
        LEFT JOIN customers c ON c.account_id = f.credit_account_id
        WHERE f.kind = 'referral'
          AND (d.kind <> 'revenue' OR a.id IS NULL OR c.id IS NULL
               OR c.id = a.customer_id OR a.ref IS NULL OR c.referral_code <> a.ref)""",
    "referral without a capture, more than once, or more than the margin": """
        SELECT a.id, COUNT(f.id) AS referrals, SUM(f.amount) AS paid,
               a.price - a.payout AS margin FROM activations a
        JOIN journal f ON f.activation_id = a.id AND f.kind = 'referral'
        GROUP BY a.id, a.price, a.payout
        HAVING COUNT(f.id) > 1 OR SUM(f.amount) > a.price - a.payout
            OR NOT EXISTS (SELECT 1 FROM journal c
                           WHERE c.activation_id = a.id AND c.kind = 'capture')""",
    "referral taken back without a refund, or more than was paid": """
        SELECT k.activation_id, SUM(k.amount) AS taken, MAX(f.amount) AS paid FROM journal k
        JOIN accounts d ON d.id = k.debit_account_id AND d.kind = 'customer'
        LEFT JOIN journal f ON f.kind = 'referral' AND f.activation_id = k.activation_id
        WHERE k.kind = 'clawback'
        GROUP BY k.activation_id
        HAVING MAX(f.amount) IS NULL OR SUM(k.amount) > MAX(f.amount)
            OR NOT EXISTS (SELECT 1 FROM journal r
                           WHERE r.activation_id = k.activation_id AND r.kind = 'refund')""",
    "adjustment not between a wallet and the outside": """
        SELECT j.id, d.kind AS debit, c.kind AS credit FROM journal j
        JOIN accounts d ON d.id = j.debit_account_id
        JOIN accounts c ON c.id = j.credit_account_id
        WHERE j.kind = 'adjustment'
          AND NOT ((d.kind = 'external' AND c.kind = 'customer')
                OR (d.kind = 'customer' AND c.kind = 'external'))""",
    # Payouts: from a provider's payable to the outside, and never more than it was owed
    # then: its balance right after each payout, from the journal in id order, is not below
    # zero (ledger.pay_out checks and posts in one statement; a later refund may still take
    # a payable below zero, which is the provider owing the operator).
    "payout not from a provider to the outside": """
        SELECT j.id, d.kind AS debit, c.kind AS credit FROM journal j
        JOIN accounts d ON d.id = j.debit_account_id
        JOIN accounts c ON c.id = j.credit_account_id
        WHERE j.kind = 'payout' AND NOT (d.kind = 'provider' AND c.kind = 'external')""",
    "payout beyond what the provider was owed": f"""
        SELECT r.id, r.account_id, r.amount, r.after FROM (
            SELECT m.id, m.kind, m.account_id, m.amount,
                   SUM(m.delta) OVER (PARTITION BY m.account_id ORDER BY m.id) AS after
            FROM (SELECT id, kind, credit_account_id AS account_id, amount, amount AS delta
                  FROM journal WHERE kind IN ({_POSTED})
                  UNION ALL
                  SELECT id, kind, debit_account_id AS account_id, amount, -amount AS delta
                  FROM journal WHERE kind IN ({_POSTED})) m
            JOIN accounts a ON a.id = m.account_id AND a.kind = 'provider'
        ) r
        WHERE r.kind = 'payout' AND r.after < 0""",
    "number busy flag differs from its live activations": f"""
        SELECT n.id, n.in_use, COUNT(a.id) AS live FROM numbers n
        LEFT JOIN activations a ON a.number_id = n.id
             AND {_A_LIVE}
        GROUP BY n.id, n.in_use
        HAVING COUNT(a.id) > 1 OR (COUNT(a.id) = 1) <> n.in_use""",
}

_TOTALS = f"""
    SELECT
      (SELECT COALESCE(SUM(amount), 0) FROM journal WHERE kind IN ({_POSTED})) AS moved,
      (SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE kind = 'customer') AS wallets,
      (SELECT COALESCE(SUM(held), 0) FROM accounts WHERE kind = 'customer') AS held,
      (SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE kind = 'provider') AS payables,
      (SELECT COALESCE(SUM(CASE WHEN j.credit_account_id = a.id THEN j.amount
                                ELSE -j.amount END), 0)
         FROM journal j JOIN accounts a ON a.kind = 'revenue'
          AND a.id IN (j.credit_account_id, j.debit_account_id)
        WHERE j.kind IN ({_POSTED})) AS revenue,
      (SELECT COALESCE(SUM(CASE WHEN j.credit_account_id = a.id THEN j.amount
                                ELSE -j.amount END), 0)
         FROM journal j JOIN accounts a ON a.kind = 'external'
          AND a.id IN (j.credit_account_id, j.debit_account_id)
        WHERE j.kind IN ({_POSTED})) AS external,
      (SELECT COALESCE(SUM(amount), 0) FROM journal j WHERE j.kind = 'hold'
          AND NOT EXISTS (SELECT 1 FROM journal r WHERE r.resolves_id = j.id)) AS pending
"""


async def snapshot(conn: Conn, *, is_sqlite: bool) -> None:
    """Make the read transaction that ``conn`` just began see one consistent snapshot for
    all the queries (SQLite's read transactions always do)."""
    if not is_sqlite:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))


async def broken_rules(conn: Conn) -> dict[str, list[dict[str, Any]]]:
    """Every rule with the rows that break it (empty: the rule holds)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for rule, query in _CHECKS.items():
        found[rule] = [dict(row._mapping) for row in await conn.execute(text(query))]
    return found


async def totals(conn: Conn) -> dict[str, int]:
    """Money moved, and what wallets, holds, payables, revenue and the outside world hold."""
    row = (await conn.execute(text(_TOTALS))).one()._mapping
    return {key: int(value) for key, value in row.items()}


# Runs kept: enough to see when problems started, never a growing table.
KEPT_RUNS = 50


class RunRow(NamedTuple):
    at: int
    actor: str
    took_ms: int
    problems: list[str]
    totals: dict[str, int]


async def record_run(
    conn: Conn,
    *,
    at: int,
    actor: str,
    took_ms: int,
    problems: list[str],
    totals: dict[str, int],
) -> None:
    result = await conn.execute(
        insert(audit_runs)
        .values(
            at=at,
            actor=actor,
            took_ms=took_ms,
            problems=json.dumps(problems),
            totals=json.dumps(totals, sort_keys=True),
        )
        .returning(audit_runs.c.id)
    )
    newest = int(result.scalar_one())
    await conn.execute(delete(audit_runs).where(audit_runs.c.id <= newest - KEPT_RUNS))


async def last_run(conn: Conn) -> RunRow | None:
    row = (
        await conn.execute(
            select(
                audit_runs.c.at,
                audit_runs.c.actor,
                audit_runs.c.took_ms,
                audit_runs.c.problems,
                audit_runs.c.totals,
            )
            .order_by(audit_runs.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return RunRow(
        int(row.at), row.actor, int(row.took_ms), json.loads(row.problems), json.loads(row.totals)
    )
