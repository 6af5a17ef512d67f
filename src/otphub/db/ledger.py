"""Every statement that moves money. Nothing else in OTPHub writes ``accounts`` or ``journal``.

The model is TigerBeetle's, in small: one journal row per movement with one debit account,
one credit account and a positive amount; a purchase is a pending transfer (hold) that is
later posted (capture) or voided (release) exactly once.

Balances: ``accounts.balance`` is credits minus debits of posted rows, ``accounts.held`` the
sum of pending holds. A customer's available money is ``balance - held``. The balance check
happens only when a hold is placed, in one conditional UPDATE, so capture and release can
never fail for lack of money.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import BigInteger, bindparam, insert, select, update

from otphub.db.engine import Conn, run
from otphub.db.schema import accounts, journal


class Kind(enum.StrEnum):
    TOPUP = "topup"  # external -> customer
    WITHDRAW = "withdraw"  # customer -> external (refund of a deposit)
    HOLD = "hold"  # pending: customer -> revenue
    CAPTURE = "capture"  # posts a hold
    RELEASE = "release"  # voids a hold
    SHARE = "share"  # revenue -> provider: the provider's payout of a capture
    PAYOUT = "payout"  # provider -> external: the operator paid the provider
    REFUND = "refund"  # revenue -> customer: reverses a capture (names it in resolves_id)
    CLAWBACK = "clawback"  # provider -> revenue: takes back the share of a refunded capture
    ADJUSTMENT = "adjustment"  # external <-> customer: the operator's signed correction
    REFERRAL = "referral"  # revenue -> customer: the referrer's part of a capture's margin


# Rows that change posted balances. A hold only reserves; a release only un-reserves.
POSTED_KINDS: tuple[Kind, ...] = (
    Kind.TOPUP,
    Kind.WITHDRAW,
    Kind.CAPTURE,
    Kind.SHARE,
    Kind.PAYOUT,
    Kind.REFUND,
    Kind.CLAWBACK,
    Kind.ADJUSTMENT,
    Kind.REFERRAL,
)
# Accounts whose balance is derived from the journal instead of kept in the row.
DERIVED_ACCOUNT_KINDS = ("revenue", "external")


@dataclass(frozen=True, slots=True)
class SystemAccounts:
    revenue: int
    external: int


async def ensure_system_accounts(conn: Conn) -> None:
    """Create the revenue and external accounts if this database lacks them (a partial
    unique index keeps them single)."""
    present = {
        k
        for (k,) in await conn.execute(
            select(accounts.c.kind).where(accounts.c.kind.in_(DERIVED_ACCOUNT_KINDS))
        )
    }
    for kind in DERIVED_ACCOUNT_KINDS:
        if kind not in present:
            await open_account(conn, kind=kind)


async def system_accounts(conn: Conn) -> SystemAccounts:
    rows = (
        await conn.execute(
            select(accounts.c.kind, accounts.c.id).where(accounts.c.kind.in_(DERIVED_ACCOUNT_KINDS))
        )
    ).all()
    ids = {kind: account_id for kind, account_id in rows}
    return SystemAccounts(revenue=ids["revenue"], external=ids["external"])


async def open_account(conn: Conn, *, kind: str) -> int:
    result = await conn.execute(
        insert(accounts).values(kind=kind, balance=0, held=0).returning(accounts.c.id)
    )
    return int(result.scalar_one())


async def _post(
    conn: Conn,
    *,
    kind: Kind,
    debit: int,
    credit: int,
    amount: int,
    now: int,
    activation_id: int | None = None,
    resolves_id: int | None = None,
    note: str | None = None,
) -> int:
    result = await run(
        conn,
        _POST,
        {
            "kind": kind.value,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "activation_id": activation_id,
            "resolves_id": resolves_id,
            "created_at": now,
            "note": note,
        },
    )
    return int(result.scalar_one())


# The statements of purchases, captures and releases, built once: building a SQLAlchemy
# statement for every call cost more than SQLite took to run it.
_POST = insert(journal).returning(journal.c.id)
_ACCOUNT = accounts.c.id == bindparam("account_id")
_AMOUNT = bindparam("amount", type_=BigInteger)
_CREDIT = update(accounts).where(_ACCOUNT).values(balance=accounts.c.balance + _AMOUNT)
_LOCK_WALLET = select(accounts.c.id).where(_ACCOUNT).with_for_update()
# The balance check and the reservation are one statement (see place_hold).
_RESERVE = (
    update(accounts)
    .where(_ACCOUNT, accounts.c.balance - accounts.c.held >= _AMOUNT)
    .values(held=accounts.c.held + _AMOUNT)
)
_UNRESERVE = update(accounts).where(_ACCOUNT).values(held=accounts.c.held - _AMOUNT)
_SETTLE = (
    update(accounts)
    .where(_ACCOUNT)
    .values(balance=accounts.c.balance - _AMOUNT, held=accounts.c.held - _AMOUNT)
)
_HOLD_OF_ACTIVATION = select(journal.c.id, journal.c.debit_account_id, journal.c.amount).where(
    journal.c.activation_id == bindparam("activation_id"), journal.c.kind == Kind.HOLD.value
)
_AVAILABLE = select(accounts.c.balance - accounts.c.held).where(_ACCOUNT)


async def top_up(
    conn: Conn, *, system: SystemAccounts, account_id: int, amount: int, now: int
) -> None:
    await _post(
        conn, kind=Kind.TOPUP, debit=system.external, credit=account_id, amount=amount, now=now
    )
    await run(conn, _CREDIT, {"account_id": account_id, "amount": amount})


async def lock_wallets(conn: Conn, account_ids: Iterable[int]) -> None:
    """Take several wallets' row locks in ascending id order (PostgreSQL), the one order
    every transaction that writes two customers' wallets uses, so no two wait on each
    other crosswise."""
    for account_id in sorted(set(account_ids)):
        await run(conn, _LOCK_WALLET, {"account_id": account_id})


async def referrer_accounts_of(conn: Conn, activation_id: int) -> list[int]:
    """The wallets paid a referral for this activation (none, or one)."""
    rows = (await run(conn, _REFERRALS_OF_ACTIVATION, {"activation_id": activation_id})).rows
    return [int(account_id) for account_id, _amount in rows]


async def lock_wallet(conn: Conn, account_id: int) -> None:
    """Take the wallet's row lock (PostgreSQL; SQLite's write lock already covers it), so
    that one customer's purchases run one after another: the orderId and live-activation
    checks that precede the hold then see every earlier purchase."""
    await run(conn, _LOCK_WALLET, {"account_id": account_id})


async def place_hold(
    conn: Conn,
    *,
    system: SystemAccounts,
    account_id: int,
    amount: int,
    activation_id: int | None,
    now: int,
) -> int | None:
    """Reserve ``amount`` of a wallet; ``None`` when the available balance is lower.

    ``activation_id`` is ``None`` only for the hold of a purchase from a remote provider
    while it calls out (``remote_purchases.hold_id`` names it; see
    ``services/remote_purchase.py``): it is released in the transaction that places the
    activation's own hold, or when the purchase fails.

    The check and the reservation are one statement, so two purchases racing for the
    last money cannot both pass.
    """
    reserved = await run(conn, _RESERVE, {"account_id": account_id, "amount": amount})
    if reserved.rowcount != 1:
        return None
    return await _post(
        conn,
        kind=Kind.HOLD,
        debit=account_id,
        credit=system.revenue,
        amount=amount,
        now=now,
        activation_id=activation_id,
    )


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    account_id: int
    amount: int
    activation_id: int | None  # None: a remote purchase's hold (see place_hold)


async def hold_of_activation(conn: Conn, activation_id: int) -> Hold:
    hold_id, account_id, amount = (
        await run(conn, _HOLD_OF_ACTIVATION, {"activation_id": activation_id})
    ).one()
    return Hold(id=hold_id, account_id=account_id, amount=amount, activation_id=activation_id)


_HOLD_BY_ID = select(
    journal.c.id, journal.c.debit_account_id, journal.c.amount, journal.c.activation_id
).where(journal.c.id == bindparam("hold_id"), journal.c.kind == Kind.HOLD.value)


async def hold_by_id(conn: Conn, hold_id: int) -> Hold:
    hold, account_id, amount, activation_id = (
        await run(conn, _HOLD_BY_ID, {"hold_id": hold_id})
    ).one()
    return Hold(id=hold, account_id=account_id, amount=amount, activation_id=activation_id)


async def capture(
    conn: Conn,
    *,
    system: SystemAccounts,
    hold: Hold,
    provider_account_id: int,
    payout: int,
    now: int,
) -> None:
    """Post a hold: the customer pays the price; the provider's payout is split off.

    The operator's margin (price - payout) stays on the derived revenue account, so the
    two parts always sum exactly to the price.
    """
    await _post(
        conn,
        kind=Kind.CAPTURE,
        debit=hold.account_id,
        credit=system.revenue,
        amount=hold.amount,
        now=now,
        activation_id=hold.activation_id,
        resolves_id=hold.id,
    )
    await run(conn, _SETTLE, {"account_id": hold.account_id, "amount": hold.amount})
    if payout > 0:
        await _post(
            conn,
            kind=Kind.SHARE,
            debit=system.revenue,
            credit=provider_account_id,
            amount=payout,
            now=now,
            activation_id=hold.activation_id,
        )
        await run(conn, _CREDIT, {"account_id": provider_account_id, "amount": payout})


async def pay_referral(
    conn: Conn,
    *,
    system: SystemAccounts,
    activation_id: int,
    account_id: int,
    amount: int,
    now: int,
) -> None:
    """The referrer's part of a captured activation's margin: revenue -> their wallet, in
    the capture's transaction (the audit checks one per captured activation, at most the
    margin)."""
    await _post(
        conn,
        kind=Kind.REFERRAL,
        debit=system.revenue,
        credit=account_id,
        amount=amount,
        now=now,
        activation_id=activation_id,
    )
    await run(conn, _CREDIT, {"account_id": account_id, "amount": amount})


async def release(conn: Conn, *, system: SystemAccounts, hold: Hold, now: int) -> None:
    """Void a hold: the reserved money is available again, nothing is paid."""
    await _post(
        conn,
        kind=Kind.RELEASE,
        debit=hold.account_id,
        credit=system.revenue,
        amount=hold.amount,
        now=now,
        activation_id=hold.activation_id,
        resolves_id=hold.id,
    )
    await run(conn, _UNRESERVE, {"account_id": hold.account_id, "amount": hold.amount})


async def available(conn: Conn, account_id: int) -> int:
    return int((await run(conn, _AVAILABLE, {"account_id": account_id})).scalar_one())


# ---------------------------------------------------------------- disputes and corrections

_CAPTURE_OF_ACTIVATION = select(journal.c.id, journal.c.debit_account_id, journal.c.amount).where(
    journal.c.activation_id == bindparam("activation_id"), journal.c.kind == Kind.CAPTURE.value
)
_SHARES_OF_ACTIVATION = select(journal.c.credit_account_id, journal.c.amount).where(
    journal.c.activation_id == bindparam("activation_id"), journal.c.kind == Kind.SHARE.value
)
_REFERRALS_OF_ACTIVATION = select(journal.c.credit_account_id, journal.c.amount).where(
    journal.c.activation_id == bindparam("activation_id"), journal.c.kind == Kind.REFERRAL.value
)
_REFUND_OF_ACTIVATION = select(journal.c.id, journal.c.created_at, journal.c.note).where(
    journal.c.activation_id == bindparam("activation_id"), journal.c.kind == Kind.REFUND.value
)
# A correction's check and its posting are one statement, as for holds: two corrections
# racing for the last money cannot both pass.
_DELTA = bindparam("delta", type_=BigInteger)
_CORRECT = (
    update(accounts)
    .where(
        _ACCOUNT,
        accounts.c.kind == "customer",
        accounts.c.balance - accounts.c.held + _DELTA >= 0,
    )
    .values(balance=accounts.c.balance + _DELTA)
)


@dataclass(frozen=True, slots=True)
class Capture:
    id: int
    account_id: int  # the customer's wallet
    amount: int  # the price
    activation_id: int


@dataclass(frozen=True, slots=True)
class RefundRecord:
    journal_id: int
    created_at: int
    reason: str


async def capture_of_activation(conn: Conn, activation_id: int) -> Capture | None:
    row = (await run(conn, _CAPTURE_OF_ACTIVATION, {"activation_id": activation_id})).first()
    if row is None:
        return None
    capture_id, account_id, amount = row
    return Capture(id=capture_id, account_id=account_id, amount=amount, activation_id=activation_id)


async def refund_of_activation(conn: Conn, activation_id: int) -> RefundRecord | None:
    row = (await run(conn, _REFUND_OF_ACTIVATION, {"activation_id": activation_id})).first()
    if row is None:
        return None
    return RefundRecord(journal_id=row[0], created_at=row[1], reason=row[2] or "")


async def refund(
    conn: Conn, *, system: SystemAccounts, capture: Capture, reason: str, now: int
) -> int:
    """Reverse a capture with new rows: the customer gets the whole price back from
    revenue, and each share of it comes back from the provider to revenue, so the
    operator's margin and the provider's payable both go down by their part.

    The refund row names the capture in ``resolves_id``: its UNIQUE constraint refuses a
    second refund of the same activation. A provider's payable may go below zero (it was
    paid out already): the provider then owes the operator. Returns the amount taken back
    from providers."""
    await _post(
        conn,
        kind=Kind.REFUND,
        debit=system.revenue,
        credit=capture.account_id,
        amount=capture.amount,
        now=now,
        activation_id=capture.activation_id,
        resolves_id=capture.id,
        note=reason,
    )
    await run(conn, _CREDIT, {"account_id": capture.account_id, "amount": capture.amount})
    clawed = 0
    shares = (await run(conn, _SHARES_OF_ACTIVATION, {"activation_id": capture.activation_id})).rows
    for provider_account_id, amount in shares:
        # The payable first, then the row, as for payouts: every row that takes from a
        # payable is then numbered after every payout it came after (it waited for the
        # payout's row lock), which the audit's payout rule relies on.
        await run(conn, _CREDIT, {"account_id": provider_account_id, "amount": -amount})
        await _post(
            conn,
            kind=Kind.CLAWBACK,
            debit=provider_account_id,
            credit=system.revenue,
            amount=amount,
            now=now,
            activation_id=capture.activation_id,
        )
        clawed += int(amount)
    return clawed


async def take_back_referral(
    conn: Conn, *, system: SystemAccounts, activation_id: int, now: int
) -> int:
    """After a refund: take the referrer's part of that activation back from their wallet
    to revenue (a clawback row from the wallet). Only what the wallet has available: the
    referrer may have spent it, and a wallet is never overdrawn; what cannot be taken back
    stays the operator's loss. Returns the amount taken back."""
    taken = 0
    paid = (await run(conn, _REFERRALS_OF_ACTIVATION, {"activation_id": activation_id})).rows
    for account_id, amount in paid:
        # The wallet's row lock first (PostgreSQL): its purchases cannot spend between the
        # read of what is available and the debit.
        await run(conn, _LOCK_WALLET, {"account_id": account_id})
        part = min(int(amount), max(0, await available(conn, account_id)))
        if part == 0:
            continue
        await run(conn, _CREDIT, {"account_id": account_id, "amount": -part})
        await _post(
            conn,
            kind=Kind.CLAWBACK,
            debit=account_id,
            credit=system.revenue,
            amount=part,
            now=now,
            activation_id=activation_id,
        )
        taken += part
    return taken


# A payout's check and its posting are one statement, as for holds: two payouts racing for
# the last of a payable cannot both pass (on PostgreSQL the second one waits for the first
# one's row lock, then finds the condition false on the new balance).
_PAY_OUT = (
    update(accounts)
    .where(_ACCOUNT, accounts.c.kind == "provider", accounts.c.balance >= _AMOUNT)
    .values(balance=accounts.c.balance - _AMOUNT)
)


async def pay_out(
    conn: Conn, *, system: SystemAccounts, account_id: int, amount: int, note: str | None, now: int
) -> int | None:
    """The operator paid a provider ``amount`` (positive) of its payable: provider ->
    external. ``None`` (nothing written) when the payable is lower: a payout never makes
    what the provider is owed go below zero. Returns the journal row's id."""
    paid = await run(conn, _PAY_OUT, {"account_id": account_id, "amount": amount})
    if paid.rowcount != 1:
        return None
    return await _post(
        conn,
        kind=Kind.PAYOUT,
        debit=account_id,
        credit=system.external,
        amount=amount,
        now=now,
        note=note,
    )


async def correct(
    conn: Conn, *, system: SystemAccounts, account_id: int, delta: int, reason: str, now: int
) -> bool:
    """Add ``delta`` (signed, not zero) to a wallet, journaled with its reason: external ->
    customer when positive, customer -> external when negative. ``False`` (nothing written)
    when the available balance would go below zero."""
    posted = await run(conn, _CORRECT, {"account_id": account_id, "delta": delta})
    if posted.rowcount != 1:
        return False
    debit, credit = (system.external, account_id) if delta > 0 else (account_id, system.external)
    await _post(
        conn,
        kind=Kind.ADJUSTMENT,
        debit=debit,
        credit=credit,
        amount=abs(delta),
        now=now,
        note=reason,
    )
    return True
