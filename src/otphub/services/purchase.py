"""Buying a number: getNumber and getNumberV2.

One write transaction, in a fixed order: the lock of the customer's wallet, the
idempotency check (orderId) and the live-activation cap, the claim of a number, the
activation, the hold on the wallet. Any refusal raises and rolls
everything back, so a failed purchase leaves no trace. No network call happens inside.

The claim comes before the hold because the price is the price of the offer whose number
was actually claimed: on PostgreSQL a concurrent buyer may take the cheapest offer's last
number, and the purchase then falls through to the next offer.
"""

from __future__ import annotations

from dataclasses import dataclass

from otphub import metrics
from otphub.db import activations, inventory, ledger
from otphub.domain import errors
from otphub.domain.numbers import parse_whole
from otphub.domain.phones import parse_phone_exceptions
from otphub.services import lifecycle, prices, remote_purchase
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    """getNumber's parameters, as they arrive (strings, ``None`` when absent or empty)."""

    service: str | None
    country: str | None = None
    operator: str | None = None
    max_price: str | None = None
    provider_ids: str | None = None
    except_provider_ids: str | None = None
    phone_exception: str | None = None
    ref: str | None = None
    order_id: str | None = None
    activation_type: str | None = None


@dataclass(frozen=True, slots=True)
class Purchase:
    activation_id: int
    phone: str
    price: int
    country_id: int
    operator: str
    created_at: int
    expires_at: int


def _id_list(raw: str | None) -> tuple[int, ...]:
    if raw is None:
        return ()
    ids = tuple(parse_whole(p.strip()) for p in raw.split(",") if p.strip())
    if any(i is None for i in ids):
        # Not a list of provider ids: nothing can match it.
        raise errors.NoNumbers()
    return tuple(i for i in ids if i is not None)


def _operators(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    names = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
    return () if "any" in names else names


def _country(rt: Runtime, raw: str | None) -> int:
    return 0 if raw is None else prices.country_id(rt, raw) or 0


def _max_price(rt: Runtime, raw: str | None) -> int | None:
    """The customer's price ceiling in minor units (``Currency.parse_ceiling``)."""
    return None if raw is None else rt.money.parse_ceiling(raw)


async def buy_number(rt: Runtime, *, customer: Customer, request: PurchaseRequest) -> Purchase:
    if request.activation_type not in (None, "0"):
        raise errors.BadAction()
    if request.service is None or request.service not in rt.catalog.services:
        raise errors.BadService()
    country_id = _country(rt, request.country)
    max_price = _max_price(rt, request.max_price)
    number_filter = inventory.NumberFilter(
        operators=_operators(request.operator),
        excluded_prefixes=parse_phone_exceptions(
            request.phone_exception,
            country_prefix=rt.catalog.countries[country_id].phone_prefix,
        ),
    )
    offer_filter = inventory.OfferFilter(
        service=request.service,
        country_id=country_id,
        provider_ids=_id_list(request.provider_ids),
        except_provider_ids=_id_list(request.except_provider_ids),
        customer_id=customer.id,
    )
    cap = customer.max_live if customer.max_live is not None else rt.settings.max_live_activations
    # Overdue activations give their money and their cap slot back before a new purchase.
    await lifecycle.resolve_overdue_of(rt, customer=customer)
    wanted = remote_purchase.Wanted(
        service=request.service,
        country_id=country_id,
        offer_filter=offer_filter,
        number_filter=number_filter,
        max_price=max_price,
        order_id=request.order_id,
        ref=request.ref,
        cap=cap,
    )
    if rt.remote_supply:
        # Issue 9: remote providers may supply; their purchases run in durable phases.
        return _purchase(await remote_purchase.buy(rt, customer=customer, wanted=wanted), wanted)

    async with rt.db.write() as conn:
        now = rt.clock.now()
        await ledger.lock_wallet(conn, customer.account_id)
        if request.order_id is not None and await activations.order_exists(
            conn, customer_id=customer.id, order_id=request.order_id
        ):
            raise errors.OrderAlreadyExists()
        if cap > 0 and await activations.count_live(conn, customer.id) >= cap:
            raise errors.ChannelsLimit()
        candidates = await inventory.offers_with_stock(conn, offer_filter, number_filter)
        if not candidates:
            raise errors.NoNumbers()
        if max_price is not None:
            affordable = [o for o in candidates if o.price <= max_price]
            if not affordable:
                raise errors.WrongMaxPrice(rt.money.format(candidates[0].price))
            candidates = affordable
        for offer in candidates:
            # None: another buyer took this offer's last number; the next offer is tried.
            bought = await remote_purchase.sell_local(rt, conn, customer, wanted, offer, now)
            if bought is not None:
                break
        else:
            raise errors.NoNumbers()
    metrics.PURCHASES.inc()
    return _purchase(bought, wanted)


def _purchase(bought: remote_purchase.Bought, wanted: remote_purchase.Wanted) -> Purchase:
    return Purchase(
        activation_id=bought.activation_id,
        phone=bought.phone,
        price=bought.price,
        country_id=wanted.country_id,
        operator=bought.operator,
        created_at=bought.created_at,
        expires_at=bought.expires_at,
    )
