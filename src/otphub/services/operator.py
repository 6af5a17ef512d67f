"""The operator's corrections: money adjustments, bans and limits, and taking offers and
numbers out of sale. Each command either does what it says and returns the result, or
refuses with a one-line reason and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from otphub.db import ledger, operator, reports
from otphub.db.engine import Conn
from otphub.db.reports import CustomerRow
from otphub.domain import errors
from otphub.services import accounts
from otphub.services.disputes import clean_reason
from otphub.services.operator_actions import SHELL, Actor, record
from otphub.services.runtime import Runtime

MAX_BAN_DAYS = 36500


@dataclass(frozen=True, slots=True)
class Adjustment:
    customer_id: int
    delta: int
    balance: int
    available: int
    reason: str


async def adjust(
    rt: Runtime, *, customer_id: int, delta: int, reason: str, by: Actor = SHELL
) -> Adjustment:
    """A signed, journaled correction of a wallet (e.g. a mistaken top-up taken back). The
    available balance (balance minus holds) never goes below zero: that is checked by the
    statement that posts it."""
    why = clean_reason(reason)
    if delta == 0:
        raise errors.InvalidAmount("an adjustment must not be zero")
    async with rt.db.write() as conn:
        found = await reports.customer(conn, customer_id)
        if found is None:
            raise errors.NotFound(f"no customer with id {customer_id}")
        account_id = await _account_of(conn, customer_id)
        if not await ledger.correct(
            conn,
            system=rt.accounts(),
            account_id=account_id,
            delta=delta,
            reason=why,
            now=rt.clock.now(),
        ):
            raise errors.InvalidAmount(
                f"customer {customer_id} has {rt.money.format(found.balance - found.held)} "
                f"available; an adjustment of {rt.money.format(delta)} would leave it below zero"
            )
        await record(
            rt, conn, by, "customer.adjust", f"customer {customer_id}", delta=delta, reason=why
        )
        after = await reports.customer(conn, customer_id)
    assert after is not None
    return Adjustment(
        customer_id=customer_id,
        delta=delta,
        balance=after.balance,
        available=after.balance - after.held,
        reason=why,
    )


async def _account_of(conn: Conn, customer_id: int) -> int:
    account_id = await reports.account_of_customer(conn, customer_id)
    if account_id is None:
        raise errors.NotFound(f"no customer with id {customer_id}")
    return account_id


async def ban(rt: Runtime, *, customer_id: int, days: float, by: Actor = SHELL) -> int:
    """Ban for ``days`` (more than 0, at most 100 years); returns the end of the ban."""
    if not 0 < days <= MAX_BAN_DAYS:
        raise errors.InvalidInput(
            f"--days must be more than 0 and at most {MAX_BAN_DAYS} "
            "(`otphub customer unban` lifts a ban)"
        )
    seconds = round(days * 86400)
    if seconds < 1:
        raise errors.InvalidInput("--days is shorter than one second")
    until = rt.clock.now() + seconds
    await accounts.set_limits(rt, customer_id=customer_id, banned_until=until, by=by)
    return until


async def set_limits(
    rt: Runtime,
    *,
    customer_id: int,
    rate_limit: int | None,
    max_live: int | None,
    by: Actor = SHELL,
) -> CustomerRow:
    """Change the limits given (``None``: unchanged) and return the customer as it is now;
    with neither given, only return it."""
    if rate_limit is not None or max_live is not None:
        await accounts.set_limits(
            rt, customer_id=customer_id, rate_limit=rate_limit, max_live=max_live, by=by
        )
    async with rt.db.read() as conn:
        found = await reports.customer(conn, customer_id)
    if found is None:
        raise errors.NotFound(f"no customer with id {customer_id}")
    return found


async def set_offer_enabled(
    rt: Runtime, *, offer_id: int, enabled: bool, by: Actor = SHELL
) -> reports.OfferRow:
    async with rt.db.write() as conn:
        if not await operator.set_offer_enabled(conn, offer_id, enabled=enabled):
            raise errors.NotFound(f"no offer with id {offer_id}")
        await record(
            rt, conn, by, "offer.enable" if enabled else "offer.disable", f"offer {offer_id}"
        )
        found = await reports.offer(conn, offer_id)
    assert found is not None
    return found


async def set_number_online(
    rt: Runtime, *, number_id: int, online: bool, by: Actor = SHELL
) -> reports.NumberRow:
    """Take a number out of sale or put it back; never a number in a live activation (the
    issue's rule for every number switch): refused until that activation ends."""
    async with rt.db.write() as conn:
        if not await operator.set_number_online(conn, number_id, online=online):
            if await reports.number(conn, number_id) is None:
                raise errors.NotFound(f"no number with id {number_id}")
            _count, live = await operator.activations_on_number(conn, number_id)
            raise errors.InvalidInput(
                f"number {number_id} is in live activation {live}: try again once it has "
                "ended (finished, cancelled or expired)"
            )
        await record(
            rt, conn, by, "number.enable" if online else "number.disable", f"number {number_id}"
        )
        found = await reports.number(conn, number_id)
    assert found is not None
    return found


async def remove_number(rt: Runtime, *, number_id: int, by: Actor = SHELL) -> reports.NumberRow:
    """Delete a number that was never sold. One in a live activation, or with past
    activations (they keep naming it), is refused: take it offline instead."""
    async with rt.db.write() as conn:
        found = await reports.number(conn, number_id)
        if found is None:
            raise errors.NotFound(f"no number with id {number_id}")
        if not await operator.remove_number(conn, number_id):
            count, live = await operator.activations_on_number(conn, number_id)
            if live is not None:
                raise errors.InvalidInput(
                    f"number {number_id} is in live activation {live} and cannot be removed: "
                    "try again once it has ended"
                )
            raise errors.InvalidInput(
                f"number {number_id} has {count} past activations, which keep naming it: "
                "take it out of sale with `otphub number disable` instead"
            )
        await record(rt, conn, by, "number.remove", f"number {number_id}", phone=found.phone)
    return found


async def set_provider_enabled(
    rt: Runtime, *, provider_id: int, enabled: bool, by: Actor = SHELL
) -> reports.ProviderRow:
    """Take a provider out of sale (its offers are no longer sold, its key is refused, its
    agent or upstream no longer polled) or put it back. Live activations go on."""
    async with rt.db.write() as conn:
        if not await operator.set_provider_enabled(conn, provider_id, enabled=enabled):
            raise errors.NotFound(f"no provider with id {provider_id}")
        await record(
            rt,
            conn,
            by,
            "provider.enable" if enabled else "provider.disable",
            f"provider {provider_id}",
        )
        found = await reports.provider(conn, provider_id)
    assert found is not None
    return found
