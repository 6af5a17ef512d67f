"""Buying when remote providers (agents, upstreams) may supply: the purchase in durable
phases (GUIDE "Talking to the outside").

Candidates are the local offers with stock and the remote offers with remote stock, in one
order (price, then delivery record, then at random). A local candidate is claimed as
``purchase.py`` always did, in one transaction. A remote candidate goes through:

1. one transaction: the wallet locked, orderId and cap checked (pending purchases count),
   a hold placed without an activation, a ``remote_purchases`` row committed 'pending'
   with ``resolve_after`` = now + the call's deadline + a margin;
2. the call (``remote_supply.get_number``), outside any transaction;
3. one transaction: the purchase locked and still pending, the number taken (``numbers``
   row offline and in use), the pending hold released and the activation's own hold placed
   (same amount), the activation inserted, the purchase 'attached'. Or, when the call
   failed or the number is refused, 'failed' and its hold released; a refused number is
   given back through the outbox. Then the next candidate.

A crash between the phases leaves a pending purchase: ``recover`` (at start-up and in every
sweep) fails those whose ``resolve_after`` passed and releases their holds. A customer
never pays for a provider's failure: when every candidate fails the answer is NO_NUMBERS.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from otphub import metrics
from otphub.db import activations, inventory, ledger, remote_purchases, remote_stock
from otphub.db.engine import Conn
from otphub.domain import errors
from otphub.domain.activation import State
from otphub.domain.supply import (
    NoRemoteNumbers,
    NumberRequest,
    ProviderKind,
    RemoteNumber,
    SupplierFailure,
)
from otphub.services import agents, remote_supply, suppliers, supply_events
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.remote_purchase")

# Beyond the call's own deadline, before a pending purchase counts as left by a crash.
RESOLVE_MARGIN = 30
# At most this many numbers a customer cancelled go into exceptionPhoneSet: the latest ones,
# which an agent is the likeliest to hand out again; older ones are still refused at attach.
MAX_AVOIDED_PHONES = 20
# A poll older than this many poll periods is stale: the poller stopped.
STALE_POLLS = 3


def fresh_since(rt: Runtime, now: int) -> remote_stock.Freshness:
    """Remote stock polled before this is not sold (the poller stopped or lags)."""
    return remote_stock.Freshness(
        agent=now - int(STALE_POLLS * rt.settings.agent_poll_seconds),
        upstream=now - int(STALE_POLLS * rt.settings.upstream_poll_seconds),
    )


async def refresh_presence(rt: Runtime) -> bool:
    """Whether remote providers exist (``Runtime.remote_supply``), read again: the sweeper
    does it in every sweep, so one added by the CLI of another process counts soon."""
    async with rt.db.read() as conn:
        rt.remote_supply = await remote_stock.any_remote_provider(conn)
    return rt.remote_supply


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the customer asked, as ``purchase.buy_number`` parsed it."""

    service: str
    country_id: int
    offer_filter: inventory.OfferFilter
    number_filter: inventory.NumberFilter
    max_price: int | None
    order_id: str | None
    ref: str | None
    cap: int


@dataclass(frozen=True, slots=True)
class Bought:
    activation_id: int
    phone: str
    price: int
    operator: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    price: int
    score: int
    tie: float
    local: inventory.Offer | None = None
    remote: remote_stock.RemoteOffer | None = None


async def _checks(conn: Conn, customer: Customer, wanted: Wanted) -> None:
    """Under the wallet's lock: orderId and the cap, pending purchases included."""
    await ledger.lock_wallet(conn, customer.account_id)
    if wanted.order_id is not None and (
        await activations.order_exists(conn, customer_id=customer.id, order_id=wanted.order_id)
        or await remote_purchases.pending_order_exists(
            conn, customer_id=customer.id, order_id=wanted.order_id
        )
    ):
        raise errors.OrderAlreadyExists()
    if wanted.cap > 0:
        live = await activations.count_live(conn, customer.id)
        pending = await remote_purchases.count_pending(conn, customer_id=customer.id)
        if live + pending >= wanted.cap:
            raise errors.ChannelsLimit()


async def _candidates(rt: Runtime, conn: Conn, wanted: Wanted, now: int) -> list[_Candidate]:
    local = await inventory.offers_with_stock(conn, wanted.offer_filter, wanted.number_filter)
    remote = await remote_stock.candidates(
        conn,
        service=wanted.service,
        country_id=wanted.country_id,
        fresh=fresh_since(rt, now),
        operators=wanted.number_filter.operators,
        provider_ids=wanted.offer_filter.provider_ids,
        except_provider_ids=wanted.offer_filter.except_provider_ids,
    )
    if not remote:
        # The local order as the claim's statement made it (price, delivery record, random).
        return [_Candidate(o.price, 0, 0.0, local=o) for o in local]
    scores = await remote_stock.delivery_scores(conn, sorted({o.provider_id for o in local}))
    merged = [
        _Candidate(o.price, scores.get(o.provider_id, 500), random.random(), local=o) for o in local
    ] + [_Candidate(o.price, o.delivery_score, random.random(), remote=o) for o in remote]
    merged.sort(key=lambda c: (c.price, -c.score, c.tie))
    return merged


async def buy(rt: Runtime, *, customer: Customer, wanted: Wanted) -> Bought:
    async with rt.db.write() as conn:
        now = rt.clock.now()
        await _checks(conn, customer, wanted)
        candidates = await _candidates(rt, conn, wanted, now)
        if not candidates:
            raise errors.NoNumbers()
        if wanted.max_price is not None:
            affordable = [c for c in candidates if c.price <= wanted.max_price]
            if not affordable:
                raise errors.WrongMaxPrice(rt.money.format(candidates[0].price))
            candidates = affordable
        # Local candidates ahead of every remote one are sold in this same transaction, as
        # purchase.py does: a local sale in a deployment with agents costs one statement
        # more (the remote candidates; and the pending count under a cap), not a second
        # transaction.
        while candidates and candidates[0].local is not None:
            offer = candidates.pop(0).local
            assert offer is not None
            bought = await sell_local(rt, conn, customer, wanted, offer, now)
            if bought is not None:
                metrics.PURCHASES.inc()
                return bought
    for candidate in candidates:
        if candidate.local is not None:
            bought = await _buy_local(rt, customer, wanted, candidate.local)
        else:
            assert candidate.remote is not None
            bought = await _buy_remote(rt, customer, wanted, candidate.remote)
        if bought is not None:
            metrics.PURCHASES.inc()
            return bought
    raise errors.NoNumbers()


async def _buy_local(
    rt: Runtime, customer: Customer, wanted: Wanted, offer: inventory.Offer
) -> Bought | None:
    """A local candidate after a remote one failed: its own transaction, checks again."""
    async with rt.db.write() as conn:
        now = rt.clock.now()
        await _checks(conn, customer, wanted)
        return await sell_local(rt, conn, customer, wanted, offer, now)


async def sell_local(
    rt: Runtime,
    conn: Conn,
    customer: Customer,
    wanted: Wanted,
    offer: inventory.Offer,
    now: int,
) -> Bought | None:
    """Claim a number of a local offer, the activation and its hold (the local sale of
    purchase.py and of a purchase beside remote providers);
    ``None`` when another buyer took the offer's last number."""
    number = await inventory.claim_number(
        conn, offer=offer, offer_filter=wanted.offer_filter, wanted=wanted.number_filter
    )
    if number is None:
        return None
    expires_at = now + (offer.ttl or rt.settings.activation_ttl)
    activation_id = await activations.insert_activation(
        conn,
        customer_id=customer.id,
        provider_id=offer.provider_id,
        number_id=number.id,
        service=wanted.service,
        country_id=wanted.country_id,
        operator=number.operator,
        phone=number.phone,
        price=offer.price,
        payout=offer.payout,
        state=State.WAITING.value,
        created_at=now,
        expires_at=expires_at,
        order_id=wanted.order_id,
        ref=wanted.ref,
    )
    hold = await ledger.place_hold(
        conn,
        system=rt.accounts(),
        account_id=customer.account_id,
        amount=offer.price,
        activation_id=activation_id,
        now=now,
    )
    if hold is None:
        raise errors.NoBalance()
    return Bought(activation_id, number.phone, offer.price, number.operator, now, expires_at)


def _operator(offer: remote_stock.RemoteOffer, wanted: Wanted) -> str:
    """The operator to ask for: ``any`` unless the customer named some; then the named one
    with the most stock at this provider."""
    if not wanted.number_filter.operators:
        return "any"
    return max(offer.operators, key=lambda name: (offer.operators[name], name))


async def _buy_remote(
    rt: Runtime, customer: Customer, wanted: Wanted, offer: remote_stock.RemoteOffer
) -> Bought | None:
    provider = await suppliers.remote_provider(rt, offer.provider_id)
    if provider is None or not provider.enabled or remote_supply.saturated(rt, provider):
        return None
    is_upstream = provider.kind is ProviderKind.UPSTREAM
    if is_upstream and offer.cost is None:
        return None
    # What the provider is paid: an agent its offer's payout, an upstream its cost.
    payout = offer.cost if is_upstream and offer.cost is not None else offer.payout
    operator = _operator(offer, wanted)
    # Phase 1: the hold and the pending record, committed.
    async with rt.db.write() as conn:
        now = rt.clock.now()
        await _checks(conn, customer, wanted)
        hold_id = await ledger.place_hold(
            conn,
            system=rt.accounts(),
            account_id=customer.account_id,
            amount=offer.price,
            activation_id=None,
            now=now,
        )
        if hold_id is None:
            raise errors.NoBalance()
        purchase_id = await remote_purchases.insert_pending(
            conn,
            customer_id=customer.id,
            provider_id=offer.provider_id,
            offer_id=offer.id,
            service=wanted.service,
            country_id=wanted.country_id,
            operator=operator,
            price=offer.price,
            payout=payout,
            hold_id=hold_id,
            order_id=wanted.order_id,
            ref=wanted.ref,
            now=now,
            resolve_after=now + int(rt.settings.agent_timeout_seconds) + 1 + RESOLVE_MARGIN,
        )
        # The cancelled-numbers rule: numbers this customer cancelled for this service at
        # this provider are asked to be avoided (and refused at attach if handed out).
        cancelled = await remote_purchases.cancelled_phones(
            conn,
            customer_id=customer.id,
            provider_id=offer.provider_id,
            service=wanted.service,
            limit=MAX_AVOIDED_PHONES,
        )
    request = NumberRequest(
        purchase_id=purchase_id,
        service=wanted.service,
        country_id=wanted.country_id,
        operator=operator,
        payout=payout,
        excluded_prefixes=(*wanted.number_filter.excluded_prefixes, *cancelled),
    )
    # Phase 2: the call, no transaction open.
    try:
        number = await remote_supply.get_number(rt, provider, request)
    except NoRemoteNumbers:
        await _fail(rt, purchase_id, note="NO_NUMBERS")
        return None
    except agents.Busy as busy:
        await _fail(rt, purchase_id, note=str(busy))
        return None
    except SupplierFailure as failure:
        await _fail(rt, purchase_id, note=str(failure))
        if provider.kind is ProviderKind.AGENT:
            await suppliers.mark_down(rt, provider.id, error=str(failure))
        log.info("remote_purchase_failed", provider_id=provider.id, reason=str(failure))
        return None
    except Exception:
        # A client's bug must cost the customer nothing either.
        log.exception("remote_purchase_error", provider_id=provider.id)
        await _fail(rt, purchase_id, note="internal error")
        return None
    # Phase 3: attach, or refuse and give the number back.
    return await _attach(
        rt,
        purchase_id,
        number,
        provider_id=offer.provider_id,
        ttl=offer.ttl,
        excluded_prefixes=wanted.number_filter.excluded_prefixes,
    )


async def _fail(rt: Runtime, purchase_id: int, *, note: str) -> bool:
    """Pending -> failed and its hold released; ``False`` if it was resolved already."""
    async with rt.db.write() as conn:
        purchase = await remote_purchases.lock_pending(conn, purchase_id)
        if purchase is None:
            return False
        await _release(rt, conn, purchase, note=note, now=rt.clock.now())
    return True


async def _release(
    rt: Runtime,
    conn: Conn,
    purchase: remote_purchases.PendingPurchase,
    *,
    note: str,
    now: int,
    remote_id: str | None = None,
) -> None:
    if not await remote_purchases.fail(
        conn, purchase_id=purchase.id, now=now, note=note, remote_id=remote_id
    ):
        raise RuntimeError(f"remote purchase {purchase.id} changed under its lock")
    hold = await ledger.hold_by_id(conn, purchase.hold_id)
    await ledger.release(conn, system=rt.accounts(), hold=hold, now=now)


def _refusal(
    rt: Runtime,
    purchase: remote_purchases.PendingPurchase,
    phone: str,
    excluded_prefixes: Sequence[str],
) -> str | None:
    """Why a handed-out number is not sold, if it is not: not a phone of the country
    asked for, or one the customer excluded."""
    prefix = rt.catalog.countries[purchase.country_id].phone_prefix
    if not phone.startswith(prefix):
        return f"number {phone} is not of country {purchase.country_id}"
    if any(phone.startswith(p) for p in excluded_prefixes):
        return f"number {phone} has a prefix the customer excluded"
    return None


async def _attach(
    rt: Runtime,
    purchase_id: int,
    number: RemoteNumber,
    *,
    provider_id: int,
    ttl: int | None,
    excluded_prefixes: Sequence[str],
) -> Bought | None:
    async with rt.db.write() as conn:
        now = rt.clock.now()
        purchase = await remote_purchases.lock_pending(conn, purchase_id)
        if purchase is None:
            # Recovery resolved it first (the call outlived resolve_after): give it back.
            await supply_events.number_refused(
                rt,
                conn,
                provider_id=provider_id,
                purchase_id=purchase_id,
                remote_id=number.remote_id,
                now=now,
            )
            return None
        refusal = _refusal(rt, purchase, number.phone, excluded_prefixes)
        number_id = None
        if refusal is None:
            number_id = await remote_purchases.take_remote_number(
                conn,
                is_sqlite=rt.db.is_sqlite,
                provider_id=purchase.provider_id,
                country_id=purchase.country_id,
                operator=_operator_name(number.operator, purchase.operator),
                phone=number.phone,
                service=purchase.service,
                customer_id=purchase.customer_id,
                now=now,
            )
            if number_id is None:
                refusal = (
                    f"number {number.phone} is busy, was sold or retired for this service, "
                    "or the customer cancelled it for this service"
                )
        if refusal is not None or number_id is None:
            await _release(
                rt, conn, purchase, note=refusal or "refused", now=now, remote_id=number.remote_id
            )
            await supply_events.number_refused(
                rt,
                conn,
                provider_id=purchase.provider_id,
                purchase_id=purchase.id,
                remote_id=number.remote_id,
                now=now,
            )
            log.info("remote_number_refused", purchase_id=purchase.id, reason=refusal)
            return None
        expires_at = now + (ttl or rt.settings.activation_ttl)
        operator = _operator_name(number.operator, purchase.operator)
        activation_id = await activations.insert_activation(
            conn,
            customer_id=purchase.customer_id,
            provider_id=purchase.provider_id,
            number_id=number_id,
            service=purchase.service,
            country_id=purchase.country_id,
            operator=operator,
            phone=number.phone,
            price=purchase.price,
            payout=purchase.payout,
            state=State.WAITING.value,
            created_at=now,
            expires_at=expires_at,
            order_id=purchase.order_id,
            ref=purchase.ref,
            remote_id=number.remote_id,
        )
        pending_hold = await ledger.hold_by_id(conn, purchase.hold_id)
        await ledger.release(conn, system=rt.accounts(), hold=pending_hold, now=now)
        hold = await ledger.place_hold(
            conn,
            system=rt.accounts(),
            account_id=pending_hold.account_id,
            amount=purchase.price,
            activation_id=activation_id,
            now=now,
        )
        # The same amount was released just before, in this transaction: it cannot fail.
        if hold is None:
            raise RuntimeError(f"remote purchase {purchase.id}: the activation's hold failed")
        if not await remote_purchases.attach(
            conn,
            purchase_id=purchase.id,
            activation_id=activation_id,
            remote_id=number.remote_id,
            now=now,
        ):
            raise RuntimeError(f"remote purchase {purchase.id} changed under its lock")
    return Bought(activation_id, number.phone, purchase.price, operator, now, expires_at)


def _operator_name(given: str, asked: str) -> str:
    name = given.strip().lower()
    return name if name and len(name) <= 32 else asked


async def recover(rt: Runtime, *, batch: int = 100) -> int:
    """Fail every pending purchase whose ``resolve_after`` passed (a crash between the
    phases left it) and release its hold; returns how many. Safe on every node at once."""
    resolved = 0
    while True:
        async with rt.db.read() as conn:
            ids = await remote_purchases.overdue_pending(conn, now=rt.clock.now(), limit=batch)
        done = 0
        for purchase_id in ids:
            async with rt.db.write() as conn:
                purchase = await remote_purchases.lock_pending(conn, purchase_id)
                if purchase is None:
                    continue
                await _release(
                    rt, conn, purchase, note="recovered: left pending", now=rt.clock.now()
                )
                done += 1
        resolved += done
        if len(ids) < batch or done == 0:
            if resolved:
                log.warning("remote_purchases_recovered", count=resolved)
            return resolved
