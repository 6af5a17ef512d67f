"""The life of an activation after purchase: setStatus, incoming SMS, expiry.

Every change runs in one write transaction that first locks the activation row
(``FOR UPDATE`` on PostgreSQL; SQLite's write lock covers it) and resolves it if its
deadline has passed, so no request ever acts on an activation that should be over.
"""

from __future__ import annotations

from dataclasses import dataclass

from otphub import metrics
from otphub.db import activations, customers, inventory, ledger, providers
from otphub.db.engine import Conn
from otphub.domain import errors, referrals
from otphub.domain.activation import (
    ANSWERS,
    HAS_CODE_STATES,
    LIVE_STATES,
    Activation,
    Outcome,
    State,
    decide,
    expiry_outcome,
    parse_status,
)
from otphub.domain.codes import extract_code
from otphub.domain.numbers import parse_whole
from otphub.services import accounts, changes, supply_events, webhooks
from otphub.services.accounts import Customer, Provider
from otphub.services.runtime import Runtime


class ConcurrentChange(RuntimeError):
    """A compare-and-set found the activation changed under a lock we hold: a bug."""


def parse_activation_id(raw: str | None) -> int:
    value = parse_whole(raw)
    if value is None:
        raise errors.WrongActivationId()
    if value <= 0:
        raise errors.NoActivation()
    return value


async def _finish(rt: Runtime, conn: Conn, act: Activation, now: int) -> None:
    if not await activations.move(
        conn, act.id, leaving=HAS_CODE_STATES, to=State.FINISHED, ended_at=now
    ):
        raise ConcurrentChange(act.id)
    await changes.announce(rt, conn, act.id)
    provider_account = await providers.account_of(conn, act.provider_id)
    hold = await ledger.hold_of_activation(conn, act.id)
    referral = await _referral(rt, conn, act)
    if referral is not None:
        # Both customers' wallets locked in id order before either is written: two captures
        # whose buyers name each other as referrers would otherwise lock them crosswise
        # (PostgreSQL aborts one: seen in the crash test).
        await ledger.lock_wallets(conn, (hold.account_id, referral[0]))
    metrics.CAPTURES.inc()
    await ledger.capture(
        conn,
        system=rt.accounts(),
        hold=hold,
        provider_account_id=provider_account,
        payout=act.payout,
        now=now,
    )
    if referral is not None:
        wallet, amount = referral
        await ledger.pay_referral(
            conn, system=rt.accounts(), activation_id=act.id, account_id=wallet, amount=amount,
            now=now,
        )  # fmt: skip
    await inventory.free_number_again(conn, act.number_id)
    if act.remote_id is not None:  # issue 9: a remote provider hears of it (outbox)
        await supply_events.captured(rt, conn, act, now=now)


async def _referral(rt: Runtime, conn: Conn, act: Activation) -> tuple[int, int] | None:
    """(the referrer's wallet, the amount) when a capture pays one: with
    OTPHUB_REFERRAL_SHARE on, the customer named by the activation's ``ref`` (by their
    referral code; never the buyer) earns that share of the operator's margin, in the
    capture's transaction. An unknown ``ref`` earns nobody anything."""
    amount = referrals.reward(price=act.price, payout=act.payout, share=rt.settings.referral_share)
    if amount == 0:
        return None  # off, or no margin: not even the lookup
    wallet = await customers.referrer_wallet(conn, act.id)
    return None if wallet is None else (wallet, amount)


async def _cancel(rt: Runtime, conn: Conn, act: Activation, now: int) -> bool:
    """Cancel (setStatus 8, or expiry without a code); ``True`` when the number is now
    retired for the activation's service."""
    if not await activations.move(
        conn, act.id, leaving=(State.WAITING,), to=State.CANCELLED, ended_at=now
    ):
        raise ConcurrentChange(act.id)
    await changes.announce(rt, conn, act.id)
    hold = await ledger.hold_of_activation(conn, act.id)
    metrics.RELEASES.inc()
    await ledger.release(conn, system=rt.accounts(), hold=hold, now=now)
    await inventory.free_number_again(conn, act.number_id)
    # The cancelled-numbers rule (README): the cancelled activation itself keeps this
    # number from this customer for this service; at OTPHUB_MAX_CANCELS cancels the number
    # is retired for the service, in this transaction.
    retired = await inventory.note_cancel(
        conn,
        is_sqlite=rt.db.is_sqlite,
        number_id=act.number_id,
        service=act.service,
        max_cancels=rt.settings.max_cancels,
        now=now,
    )
    if act.remote_id is not None:  # issue 9: a remote provider hears of it (outbox)
        # A retired number: an agent hears FINISH_ACTIVATION 1 (never offer it for this
        # service again) instead of 4; an upstream hears setStatus 8 either way.
        if retired:
            await supply_events.not_again(rt, conn, act, now=now)
        else:
            await supply_events.released(rt, conn, act, now=now)
    return retired


async def _expire(rt: Runtime, conn: Conn, act: Activation, now: int) -> Outcome:
    outcome = expiry_outcome(act.state)
    if outcome is Outcome.FINISH:
        await _finish(rt, conn, act, now)
    else:
        await _cancel(rt, conn, act, now)
    return outcome


async def _locked_current(
    rt: Runtime, conn: Conn, activation_id: int, *, customer_id: int | None, now: int
) -> Activation | None:
    """Lock the activation and resolve it first if its deadline has passed."""
    act = await activations.get(conn, activation_id, customer_id=customer_id, for_update=True)
    if act is not None and act.snapshot.is_overdue(now):
        await _expire(rt, conn, act, now)
        act = await activations.get(conn, activation_id, customer_id=customer_id)
    return act


async def _apply(rt: Runtime, conn: Conn, act: Activation, outcome: Outcome, now: int) -> None:
    if outcome is Outcome.READY:
        await activations.mark_ready(conn, act.id, now)  # nothing a customer sees changes
        if act.remote_id is not None:  # issue 9: mirrored to an upstream (outbox)
            await supply_events.ready(rt, conn, act, now=now)
    elif outcome is Outcome.RETRY:
        if not await activations.move(conn, act.id, leaving=HAS_CODE_STATES, to=State.RETRY):
            raise ConcurrentChange(act.id)
        await changes.announce(rt, conn, act.id)
        if act.remote_id is not None:  # issue 9: mirrored to an upstream (outbox)
            await supply_events.retry(rt, conn, act, now=now)
    elif outcome is Outcome.FINISH:
        await _finish(rt, conn, act, now)
    elif outcome is Outcome.CANCEL:
        await _cancel(rt, conn, act, now)


async def set_status(
    rt: Runtime, *, customer: Customer, activation_id: str | None, status: str | None
) -> str:
    """setStatus; returns the protocol answer."""
    wanted_id = parse_activation_id(activation_id)
    wanted_status = parse_status(status)
    async with rt.db.write() as conn:
        now = rt.clock.now()
        act = await _locked_current(rt, conn, wanted_id, customer_id=customer.id, now=now)
        if act is None:
            raise errors.NoActivation()
        try:
            outcome = decide(
                act.snapshot, wanted_status, now=now, early_cancel=rt.settings.early_cancel
            )
        except errors.ProtocolError as refused:
            refusal = refused
        else:
            await _apply(rt, conn, act, outcome, now)
            return ANSWERS[outcome]
    # Refused: raised only now, after the transaction committed, so that an expiry
    # resolved above (the deadline had passed) is kept.
    raise refusal


async def current(rt: Runtime, *, customer: Customer, activation_id: str | None) -> Activation:
    """The activation as the customer sees it now (resolved first if overdue)."""
    wanted_id = parse_activation_id(activation_id)
    read = await activations.of_customer(rt.db, activation_id=wanted_id, customer_id=customer.id)
    return await as_seen_now(rt, customer=customer, activation_id=activation_id, read=read)


def polled_id(raw: str | None) -> int | None:
    """The id a status poll asks for, if it is one that can exist (else ``as_seen_now`` on
    nothing gives the right refusal)."""
    value = parse_whole(raw)
    return value if value is not None and value > 0 else None


async def as_seen_now(
    rt: Runtime, *, customer: Customer, activation_id: str | None, read: Activation | None
) -> Activation:
    """``read``, the customer's activation ``activation_id`` as just read (``None``: not
    found), as the customer sees it now: resolved first if its deadline has passed."""
    wanted_id = parse_activation_id(activation_id)  # a malformed id: its own refusal
    if read is None:
        raise errors.NoActivation()
    if not read.snapshot.is_overdue(rt.clock.now()):
        return read
    async with rt.db.write() as conn:
        resolved = await _locked_current(
            rt, conn, wanted_id, customer_id=customer.id, now=rt.clock.now()
        )
    assert resolved is not None  # activations are never deleted
    return resolved


@dataclass(frozen=True, slots=True)
class IngestResult:
    sms_id: int | None  # None: a repeat of an SMS stored before
    activation_id: int | None  # None: no live activation on the number (kept as unmatched)


async def ingest_sms(
    rt: Runtime,
    *,
    provider: Provider,
    provider_sms_id: int,
    phone: str,
    phone_from: str | None,
    text: str,
) -> IngestResult:
    """Store an incoming SMS durably (once per provider and smsId) and hand its code to the
    live activation of the number, if there is one."""
    async with rt.db.write() as conn:
        now = rt.clock.now()
        number_id = await activations.number_of_provider(conn, provider_id=provider.id, phone=phone)
        if number_id is None:
            raise errors.SupplierError(
                f"phone {phone} is not a number of this provider", http_status=404
            )
        code = extract_code(text)
        stored = await activations.store_sms(
            conn,
            is_sqlite=rt.db.is_sqlite,
            provider_id=provider.id,
            provider_sms_id=provider_sms_id,
            phone=phone,
            phone_from=phone_from,
            text=text,
            code=code,
            now=now,
        )
        if stored is None:
            return IngestResult(sms_id=None, activation_id=None)
        live = await activations.live_on_number(conn, number_id)
        if live is not None and live.snapshot.is_overdue(now):
            await _expire(rt, conn, live, now)
            live = None
        if live is None:
            return IngestResult(sms_id=stored, activation_id=None)
        if not await activations.move(
            conn,
            live.id,
            leaving=LIVE_STATES,
            to=State.CODE,
            code=code,
            sms_text=text,
            sms_at=now,
        ):
            raise ConcurrentChange(live.id)
        await activations.match_sms(conn, sms_id=stored, activation_id=live.id)
        await webhooks.enqueue_sms(
            rt, conn, activation=live, sms_id=stored, text=text, code=code, received_at=now
        )
        # Waiting requests and event streams, here and on every other process, after commit.
        await changes.announce(rt, conn, live.id)
        return IngestResult(sms_id=stored, activation_id=live.id)


async def end_by_provider(rt: Runtime, *, activation_id: int) -> Outcome | None:
    """The provider ended a live activation on its side (an upstream cancelled or expired
    it): resolved as expiry resolves it, finished with a code (captured), cancelled
    without one (the customer's hold released). ``None`` when it had ended already.
    What the lifecycle sends to the provider about it (setStatus 8 or 6 through the
    outbox) finds it ended there, which the provider's client counts as delivered."""
    async with rt.db.write() as conn:
        act = await activations.get(conn, activation_id, for_update=True)
        if act is None or act.state not in LIVE_STATES:
            return None
        return await _expire(rt, conn, act, rt.clock.now())


async def _resolve_if_overdue(rt: Runtime, activation_id: int) -> bool:
    """One overdue activation, in its own transaction. Every transaction that resolves an
    activation locks the same rows in the same order (the activation, the wallet, the
    provider, the number) and only those of one activation, so no two can deadlock. On
    PostgreSQL a row another node is resolving right now is skipped, not waited for."""
    async with rt.db.write() as conn:
        now = rt.clock.now()
        act = await activations.get(conn, activation_id, for_update=True, skip_locked=True)
        if act is None or not act.snapshot.is_overdue(now):
            return False
        await _expire(rt, conn, act, now)
        return True


async def sweep(rt: Runtime, *, batch: int = 100) -> int:
    """Resolve every overdue activation, oldest deadline first, a batch at a time; returns
    how many this call resolved. Safe to run on every node at once."""
    resolved = 0
    while True:
        async with rt.db.read() as conn:
            ids = await activations.overdue(conn, now=rt.clock.now(), limit=batch)
        done = 0
        for activation_id in ids:
            done += await _resolve_if_overdue(rt, activation_id)
        resolved += done
        # A short batch was the last; a full one that resolved nothing is being resolved
        # by another node: leave it to that node.
        if len(ids) < batch or done == 0:
            return resolved


async def resolve_overdue_of(rt: Runtime, *, customer: Customer) -> None:
    """Resolve the customer's activations whose deadline has passed (the sweeper would,
    within a period; a request of the customer's must not wait for it). One indexed read
    when there are none."""
    now = rt.clock.now()
    if not await activations.has_overdue(rt.db, customer_id=customer.id, now=now):
        return
    async with rt.db.read() as conn:
        overdue = await activations.overdue_of_customer(conn, customer_id=customer.id, now=now)
    for activation_id in overdue:
        await _resolve_if_overdue(rt, activation_id)


async def available_balance(rt: Runtime, *, customer: Customer) -> int:
    """The customer's available balance as of now, after resolving any activation whose
    deadline has passed (its hold is money the customer has again, or has spent). One
    statement when none has."""
    now = rt.clock.now()
    available, overdue = await customers.available_and_overdue(
        rt.db, account_id=customer.account_id, customer_id=customer.id, now=now
    )
    if not overdue:
        return available
    await resolve_overdue_of(rt, customer=customer)
    return await accounts.balance(rt, customer)


async def live_activations(rt: Runtime, *, customer: Customer) -> list[Activation]:
    """The customer's live activations, after resolving any whose deadline has passed."""
    await resolve_overdue_of(rt, customer=customer)
    async with rt.db.read() as conn:
        return await activations.live_of_customer(conn, customer.id)


# An SMS as stored (id, text, code, received_at), for the entry points.
Sms = activations.StoredSms


async def sms_after(rt: Runtime, *, activation_id: int, after: int) -> list[Sms]:
    """The activation's SMS with an id past ``after``, oldest first (the event stream)."""
    return await activations.sms_of(rt.db, activation_id=activation_id, after=after)


async def awaiting_sms(rt: Runtime, *, provider_id: int, bought_before: int) -> list[Activation]:
    """Live activations of a provider that wait for an SMS: bought before ``bought_before``
    and still without a code, or put back to retry (the demo's simulated SIM bank)."""
    async with rt.db.read() as conn:
        return await activations.awaiting_sms(
            conn, provider_id=provider_id, bought_before=bought_before
        )
