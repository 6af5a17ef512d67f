"""Disputes: the operator refunds a finished activation.

A provider can make an activation count as delivered by pushing any text; the customer then
cannot cancel. The operator, having looked at the complaint, refunds it: new journal rows
give the customer the price back and take the provider's payout and the operator's margin
back (see ``ledger.refund``), and the referrer's part of the margin as far as their wallet
has it available (``ledger.take_back_referral``). The activation stays finished (it was),
and is shown as refunded (getHistory answers status "8", the money went back).
"""

from __future__ import annotations

from dataclasses import dataclass

from otphub.db import activations, ledger
from otphub.domain import errors
from otphub.domain.activation import State
from otphub.services import supply_events
from otphub.services.operator_actions import SHELL, Actor, record
from otphub.services.runtime import Runtime

MAX_REASON = 200  # the journal's note column


@dataclass(frozen=True, slots=True)
class Refund:
    activation_id: int
    customer_id: int
    provider_id: int
    amount: int  # the price, back to the customer
    clawed_back: int  # taken back from the provider's payable
    from_referrer: int  # the referral of the activation, taken back from the referrer
    margin: int  # taken back from the operator's revenue
    reason: str
    created_at: int


def clean_reason(raw: str) -> str:
    reason = " ".join(raw.split())
    if not reason:
        raise errors.InvalidInput("a reason is required (--reason TEXT)")
    if len(reason) > MAX_REASON:
        raise errors.InvalidInput(f"the reason is longer than {MAX_REASON} characters")
    return reason


async def refund_activation(
    rt: Runtime, *, activation_id: int, reason: str, by: Actor = SHELL
) -> Refund:
    """Refund a finished activation once. Refused: unknown, not finished, refunded already.

    The activation row is locked first, as every change of an activation does, so two
    refunds of one activation run one after the other and the second is refused here; the
    unique ``resolves_id`` of the refund row refuses it in the database in any case."""
    why = clean_reason(reason)
    async with rt.db.write() as conn:
        now = rt.clock.now()
        act = await activations.get(conn, activation_id, for_update=True)
        if act is None:
            raise errors.NotFound(f"no activation with id {activation_id}")
        if act.state is not State.FINISHED:
            raise errors.InvalidInput(
                f"activation {activation_id} is {act.state.value}, not finished: only a "
                "finished activation was paid for (a live one can be cancelled by its customer)"
            )
        earlier = await ledger.refund_of_activation(conn, activation_id)
        if earlier is not None:
            raise errors.InvalidInput(
                f"activation {activation_id} was refunded already ({earlier.reason})"
            )
        capture = await ledger.capture_of_activation(conn, activation_id)
        if capture is None:  # a finished activation always has one; the audit says so
            raise errors.InvalidInput(f"activation {activation_id} has no capture to refund")
        # The buyer's wallet and any referrer's, locked in the captures' order (ledger).
        referrers = await ledger.referrer_accounts_of(conn, activation_id)
        if referrers:
            await ledger.lock_wallets(conn, (capture.account_id, *referrers))
        clawed = await ledger.refund(
            conn, system=rt.accounts(), capture=capture, reason=why, now=now
        )
        from_referrer = await ledger.take_back_referral(
            conn, system=rt.accounts(), activation_id=activation_id, now=now
        )
        if act.remote_id is not None:  # issue 9: FINISH_ACTIVATION 5 to an agent (outbox)
            await supply_events.refunded(rt, conn, act, now=now)
        await record(
            rt,
            conn,
            by,
            "activation.refund",
            f"activation {activation_id}",
            amount=capture.amount,
            customer=act.customer_id,
            reason=why,
        )
    return Refund(
        activation_id=act.id,
        customer_id=act.customer_id,
        provider_id=act.provider_id,
        amount=capture.amount,
        clawed_back=clawed,
        from_referrer=from_referrer,
        margin=capture.amount - clawed - from_referrer,
        reason=why,
        created_at=now,
    )
