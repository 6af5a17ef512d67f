"""A customer's wallet in the web console: the available balance and the latest movements,
each described in plain words with its effect on the money the customer can spend."""

from __future__ import annotations

from dataclasses import dataclass

from otphub.db import movements
from otphub.services import lifecycle
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

MAX_MOVEMENTS = 50


@dataclass(frozen=True, slots=True)
class Movement:
    id: int
    at: int
    what: str
    # The change of the available balance, in minor units (a capture changes nothing: its
    # money was set aside by the hold already); ``None`` for such a row.
    change: int | None
    activation_id: int | None


def _describe(row: movements.WalletRow) -> tuple[str, int | None]:
    amount = row.amount if row.credited else -row.amount
    kind = row.kind
    if kind == "topup":
        return "Top-up", amount
    if kind == "withdraw":
        return "Withdrawal", amount
    if kind == "hold":
        return "Set aside for a number", amount
    if kind == "capture":
        return "Paid: the money set aside was spent (the code came)", None
    if kind == "release":
        # A release's row names the wallet on the same side as its hold: the money is back.
        return "Given back: the activation ended without a code", row.amount
    if kind == "refund":
        return "Refunded by the operator", amount
    if kind == "referral":
        return "Referral reward", amount
    if kind == "adjustment":
        return "Correction by the operator", amount
    return kind, amount


async def movements_of(rt: Runtime, customer: Customer, *, limit: int = 20) -> list[Movement]:
    """The customer's latest movements, newest first (at most ``MAX_MOVEMENTS``)."""
    async with rt.db.read() as conn:
        rows = await movements.of_wallet(
            conn, customer.account_id, limit=min(max(limit, 1), MAX_MOVEMENTS)
        )
    found = []
    for row in rows:
        what, change = _describe(row)
        if row.note and row.kind in ("adjustment", "refund", "topup", "withdraw"):
            what = f"{what}: {row.note}"
        found.append(Movement(row.id, row.created_at, what, change, row.activation_id))
    return found


async def balance(rt: Runtime, customer: Customer) -> tuple[int, int]:
    """(available, set aside for live activations), as of now: an activation past its
    deadline is resolved first (its hold is money the customer has again, or spent)."""
    available = await lifecycle.available_balance(rt, customer=customer)
    async with rt.db.read() as conn:
        held = await movements.held(conn, customer.account_id)
    return available, held
