"""``Idempotency-Key`` on API v1's purchases: the same key and body answer the first
answer again and buy nothing; the same key with another body is refused; a key is kept
24 hours.

Never two purchases for one key, also when two requests with it arrive at once or the
server dies between the purchase and storing its answer:

1. The key is claimed (a row without an answer) in its own transaction, before buying.
   A second request that finds the claim without an answer is refused
   (``IDEMPOTENCY_KEY_IN_USE``) while the first may still be buying.
2. The purchase carries an order id derived from the claim. Activations are unique per
   customer and order id, so the database itself refuses a second purchase for a claim;
   the request that meets that refusal answers with the activation bought.
3. The answer is stored on the claim after the purchase. A retry that finds a claim
   without an answer but an activation with its order id (the server died in between)
   answers with that activation, and stores it.

A refusal (``NO_NUMBERS``, ``NO_BALANCE``, ...) is not stored: the claim is released, so
that a retry with the same key tries again. Nothing was bought or changed by a refused
purchase, and a client that retries after ``NO_NUMBERS`` means "now, if there is one".
A claim left without an answer by a crash before anything was bought is taken over by a
retry once it is ``STALE_CLAIM`` seconds old (the order id still forbids a second
purchase if the first request was only slow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from otphub.db import activations
from otphub.db import idempotency as keys
from otphub.domain import errors
from otphub.domain.activation import Activation
from otphub.services import purchase
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

KEEP_SECONDS = 24 * 3600
# A claim without an answer this old was left by a process that died before buying; a
# purchase (remote providers included) ends long before.
STALE_CLAIM = 120


class KeyReused(errors.OTPHubError):
    """The key was used with another request body."""


class KeyInUse(errors.OTPHubError):
    """A request with the key is being answered right now."""


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: str


@dataclass(frozen=True, slots=True)
class _Claim:
    key: str
    created_at: int

    @property
    def order_id(self) -> str:
        # Derived from the claim, not from the key alone: the same key used again after it
        # expired is a new purchase, with its own order id.
        return f"idempotency:{self.created_at}:{self.key}"


@dataclass(frozen=True, slots=True)
class _Bought:
    claim: _Claim
    activation: Activation


async def _begin(rt: Runtime, customer: Customer, key: str, request_hash: str) -> object:
    """The claim to buy under, the stored answer, or the activation a claim bought."""
    async with rt.db.write() as conn:
        now = rt.clock.now()
        claimed = await keys.claim(
            conn,
            is_sqlite=rt.db.is_sqlite,
            customer_id=customer.id,
            key=key,
            request_hash=request_hash,
            now=now,
        )
        if claimed:
            return _Claim(key, now)
        row = await keys.get(conn, customer_id=customer.id, key=key, for_update=True)
        if row is None:  # released by its request between our two statements
            raise KeyInUse()
        if row.created_at <= now - KEEP_SECONDS:
            # Expired (the sweeper has not purged it yet): forgotten, claimed anew.
            await keys.release(conn, customer_id=customer.id, key=key, created_at=row.created_at)
            await keys.claim(
                conn,
                is_sqlite=rt.db.is_sqlite,
                customer_id=customer.id,
                key=key,
                request_hash=request_hash,
                now=now,
            )
            return _Claim(key, now)
        if row.request_hash != request_hash:
            raise KeyReused()
        if row.status_code is not None and row.response is not None:
            return Answer(row.status_code, row.response)
        claim = _Claim(key, row.created_at)
        bought = await activations.of_order(conn, customer_id=customer.id, order_id=claim.order_id)
        if bought is not None:
            return _Bought(claim, bought)
        if row.created_at > now - STALE_CLAIM:
            raise KeyInUse()
        return claim  # left by a crash: taken over


async def buy_once(
    rt: Runtime,
    *,
    customer: Customer,
    key: str,
    request_hash: str,
    request: purchase.PurchaseRequest,
    render: Callable[[Activation], str],
) -> Answer:
    """Buy for ``request`` once per ``key``: the answer (201 and ``render`` of the
    activation bought), the first one again, or a refusal raised (the key released)."""
    begun = await _begin(rt, customer, key, request_hash)
    if isinstance(begun, Answer):
        return begun
    if isinstance(begun, _Bought):
        return await _answered(rt, customer, begun.claim, begun.activation, render)
    assert isinstance(begun, _Claim)
    claim = begun
    try:
        await purchase.buy_number(
            rt, customer=customer, request=replace(request, order_id=claim.order_id)
        )
    except errors.OrderAlreadyExists:
        # Another request of this claim bought (a taken-over claim whose first request was
        # only slow): its activation is the answer.
        pass
    except errors.ProtocolError:
        # Refused: the purchase rolled back, nothing was bought. Any other failure keeps
        # the claim (a commit may have happened): a retry finds the activation by its
        # order id, or takes the claim over once stale, under the same order id.
        await _release(rt, customer, claim)
        raise
    async with rt.db.read() as conn:
        act = await activations.of_order(conn, customer_id=customer.id, order_id=claim.order_id)
    if act is None:  # the order id was just bought, or found taken
        raise errors.ErrorSql()
    return await _answered(rt, customer, claim, act, render)


async def _answered(
    rt: Runtime,
    customer: Customer,
    claim: _Claim,
    act: Activation,
    render: Callable[[Activation], str],
) -> Answer:
    answer = Answer(201, render(act))
    async with rt.db.write() as conn:
        await keys.answer(
            conn,
            customer_id=customer.id,
            key=claim.key,
            created_at=claim.created_at,
            status_code=answer.status_code,
            response=answer.body,
            activation_id=act.id,
        )
    return answer


async def _release(rt: Runtime, customer: Customer, claim: _Claim) -> None:
    async with rt.db.write() as conn:
        await keys.release(
            conn, customer_id=customer.id, key=claim.key, created_at=claim.created_at
        )


async def purge(rt: Runtime) -> int:
    """Forget the keys ``KEEP_SECONDS`` old (the sweeper, once a minute); how many."""
    async with rt.db.write() as conn:
        return await keys.purge(conn, claimed_by=rt.clock.now() - KEEP_SECONDS)
