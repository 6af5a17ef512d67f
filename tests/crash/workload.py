"""The crash test's client side: a funded world, a mixed workload over real HTTP, and the
record of every answer the client received in full, i.e. what the server acknowledged.

A request that fails with a transport error (the server was killed while it was in
flight) is *not acknowledged*: the record keeps what an honest client would retry, the
getNumberV2 orders (same orderId) and the pushed SMS (same smsId), and nothing else.

A kill explains a transport error, and only one seen after the kill: SIGKILL gives a request
in flight a broken connection, never an answer. So any other answer no client may get (an
HTTP status other than 200, ``ERROR_SQL``, a PUSH_SMS not answered SUCCESS) and any transport
error seen while the server was meant to be up is recorded as unexpected, and the test
allows none.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from otphub.services import accounts, inventory, reports, webhooks
from otphub.services.runtime import build_runtime
from tests.support import settings_for

HANDLER = "/stubs/handler_api.php"
SMS_PATH = "/agent/api/sms"
SERVICES = ("tg", "wa", "vk", "go", "ig", "fb", "tw", "ds")
WORKERS = 6  # requests in flight at once during a workload

# Weights of the operations a worker picks from.
OPERATIONS = {
    "buy": 30,
    "sms": 22,
    "finish": 14,
    "cancel": 10,
    "retry": 6,
    "status": 8,
    "balance": 4,
    "sms_repeat": 3,
    "sms_stray": 3,
}


# ---------------------------------------------------------------- the world


@dataclass(frozen=True, slots=True)
class Buyer:
    id: int
    key: str
    referral_code: str


@dataclass(frozen=True, slots=True)
class Supplier:
    id: int
    key: str
    phones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class World:
    buyers: tuple[Buyer, ...]
    suppliers: tuple[Supplier, ...]

    def supplier_of(self, phone: str) -> Supplier:
        return next(s for s in self.suppliers if phone in s.phones)


# Port 9 (discard) on loopback: nobody listens, so every delivery fails fast and waits.
WEBHOOK_URL = "http://127.0.0.1:9/hook"


async def build_world(url: str) -> World:
    """Three customers with 1000.00 each, each with a webhook (to a port where nobody
    answers: its messages wait in the outbox); two providers selling every service of
    SERVICES in Russia (the cheaper one with 40 numbers, the dearer with 24)."""
    rt = build_runtime(settings_for(url, webhook_allow_private=True))
    await rt.start(migrate_schema=False)
    try:
        suppliers = []
        for index, (count, price, payout) in enumerate(((40, 50, 40), (24, 60, 45)), start=1):
            created = await accounts.add_provider(rt, name=f"SIM bank {index}")
            for service in SERVICES:
                await inventory.set_offer(
                    rt,
                    provider_id=created.id,
                    service=service,
                    country_id=0,
                    price=price,
                    payout=payout,
                )
            phones = tuple(f"7900{index}{i:06d}" for i in range(count))
            await inventory.add_numbers(
                rt, provider_id=created.id, country_id=0, phones=phones, operator="mts"
            )
            suppliers.append(Supplier(created.id, created.key, phones))
        buyers = []
        for index in range(3):
            customer = await accounts.add_customer(rt, name=f"buyer {index}", balance=100_000)
            await webhooks.add(rt, customer_id=customer.id, url=WEBHOOK_URL)
            shown = await reports.show_customer(rt, customer_id=customer.id)
            code = shown.customer.referral_code
            assert code is not None
            buyers.append(Buyer(customer.id, customer.api_key, code))
    finally:
        await rt.close()
    return World(tuple(buyers), tuple(suppliers))


# ---------------------------------------------------------------- what the client saw


@dataclass(slots=True)
class Bought:
    """An acknowledged purchase."""

    id: int
    buyer: Buyer
    phone: str
    service: str
    order_id: str | None
    at: float  # time.monotonic() when the answer arrived
    coded: bool = False  # an SMS to its phone was acknowledged after the purchase


@dataclass(frozen=True, slots=True)
class LostOrder:
    """A getNumberV2 that got no answer: the client retries it with the same orderId."""

    buyer: Buyer
    service: str
    order_id: str


@dataclass
class Record:
    purchases: dict[int, Bought] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)
    cancelled: set[int] = field(default_factory=set)
    # (provider id, smsId) -> (phone, text) of every PUSH_SMS answered SUCCESS
    sms: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    lost_orders: dict[str, LostOrder] = field(default_factory=dict)
    lost_sms: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # acknowledged purchases that may still be live: what the workload acts on
    live: dict[int, Bought] = field(default_factory=dict)
    sent: int = 0  # requests sent by the workload
    interrupted: int = 0  # of which got no answer (a transport error after the kill)
    answers: Counter[str] = field(default_factory=Counter)
    # what the server must never answer, and transport errors while it was meant to be up
    unexpected: Counter[str] = field(default_factory=Counter)
    # recovery after a restart
    orders_retried: int = 0
    orders_committed_unanswered: int = 0  # the retry said ORDER_ALREADY_EXISTS
    orders_rebought: int = 0
    sms_resent: int = 0
    sms_committed_unanswered: int = 0  # stored before the kill, though never acknowledged

    def count(self, name: str) -> int:
        return self.answers[name]


def _word(body: str) -> str:
    return "JSON" if body.startswith(("{", "[")) else body.split(":", 1)[0]


class Workload:
    """WORKERS concurrent clients, each sending one request after another, until stopped."""

    def __init__(self, world: World, record: Record, rng: random.Random, ttl: int) -> None:
        self.world = world
        self.record = record
        self.rng = rng
        self.ttl = ttl
        self.running = False
        # Set at once after the kill (no await in between): a transport error seen before
        # it cannot be the kill's doing.
        self.killed = False
        self._order_ids = itertools.count(1)
        self._sms_ids = itertools.count(1)

    # -- driving

    async def run(self, base_url: str, duration: float, kill: Callable[[], None]) -> None:
        """Run the workload for ``duration`` seconds, then call ``kill`` with requests in
        flight, and wait until every worker has its answer or its transport error."""
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(base_url=base_url, timeout=20, limits=limits) as client:
            self.running = True
            self.killed = False
            tasks = [asyncio.create_task(self._worker(client)) for _ in range(WORKERS)]
            try:
                await asyncio.sleep(duration)
            finally:
                # No request starts after this point; those in flight meet the kill.
                self.running = False
                kill()
                self.killed = True
                await asyncio.gather(*tasks)

    async def _worker(self, client: httpx.AsyncClient) -> None:
        names = list(OPERATIONS)
        weights = list(OPERATIONS.values())
        while self.running:
            operation = self.rng.choices(names, weights)[0]
            await getattr(self, f"_{operation}")(client)

    # -- transport

    async def _api(self, client: httpx.AsyncClient, params: dict[str, str]) -> str | None:
        """A customer-API answer, or None when none came (transport error, non-200)."""
        self.record.sent += 1
        try:
            response = await client.get(HANDLER, params=params)
        except httpx.TransportError as error:
            self._no_answer(params["action"], error)
            return None
        if response.status_code != 200:
            self.record.unexpected[f"{params['action']} HTTP {response.status_code}"] += 1
            return None
        word = _word(response.text)
        self.record.answers[f"{params['action']} {word}"] += 1
        if word == "ERROR_SQL":
            self.record.unexpected[f"{params['action']} ERROR_SQL"] += 1
        return response.text

    async def push(self, client: httpx.AsyncClient, body: dict[str, Any]) -> bool:
        """PUSH_SMS; True when answered SUCCESS (recorded as acknowledged)."""
        self.record.sent += 1
        key = (self._provider_of_key(body["key"]), int(body["smsId"]))
        try:
            response = await client.post(SMS_PATH, json=body)
        except httpx.TransportError as error:
            self._no_answer("PUSH_SMS", error)
            self.record.lost_sms[key] = body
            return False
        if response.status_code == 200 and response.json() == {"status": "SUCCESS"}:
            self.record.answers["PUSH_SMS SUCCESS"] += 1
            self.record.sms[key] = (str(body["phone"]), str(body["text"]))
            self.record.lost_sms.pop(key, None)
            return True
        # An agent resends until SUCCESS: so does this one, after the next restart.
        self.record.unexpected[f"PUSH_SMS HTTP {response.status_code} {response.text[:80]}"] += 1
        self.record.lost_sms[key] = body
        return False

    def _no_answer(self, action: str, error: httpx.TransportError) -> None:
        if self.killed:
            self.record.interrupted += 1
        else:
            self.record.unexpected[f"{action} {type(error).__name__} while the server was up"] += 1

    def _provider_of_key(self, key: str) -> int:
        return next(s.id for s in self.world.suppliers if s.key == key)

    # -- picking targets

    def _candidates(self, coded: bool | None = None) -> list[Bought]:
        """Acknowledged purchases that are probably still live (young enough)."""
        horizon = time.monotonic() - (self.ttl + 1)
        for stale in [b.id for b in self.record.live.values() if b.at < horizon]:
            self.record.live.pop(stale, None)
        return [b for b in self.record.live.values() if coded is None or b.coded == coded]

    def _pick(self, coded: bool | None = None) -> Bought | None:
        found = self._candidates(coded)
        return self.rng.choice(found) if found else None

    def sms_body(self, supplier: Supplier, phone: str) -> dict[str, Any]:
        code = f"{self.rng.randrange(10**5):05d}"
        return {
            "action": "PUSH_SMS",
            "key": supplier.key,
            "smsId": next(self._sms_ids),
            "phone": int(phone),
            "phoneFrom": "Service",
            "text": f"Your code: {code}",
        }

    # -- the operations

    async def _buy(self, client: httpx.AsyncClient) -> None:
        buyer = self.rng.choice(self.world.buyers)
        service = self.rng.choice(SERVICES)
        params = {"api_key": buyer.key, "service": service, "country": "0"}
        if self.rng.random() < 0.5:  # names another buyer as referrer (OTPHUB_REFERRAL_SHARE)
            params["ref"] = self.rng.choice(self.world.buyers).referral_code
        if self.rng.random() < 0.5:
            body = await self._api(client, {**params, "action": "getNumber"})
            if body is not None and body.startswith("ACCESS_NUMBER:"):
                _, activation_id, phone = body.split(":")
                self.bought(int(activation_id), buyer, phone, service, None)
            return
        order_id = f"order-{next(self._order_ids)}"
        body = await self._api(client, {**params, "action": "getNumberV2", "orderId": order_id})
        if body is None:
            self.record.lost_orders[order_id] = LostOrder(buyer, service, order_id)
        elif body.startswith("{"):
            answer = json.loads(body)
            self.bought(answer["activationId"], buyer, answer["phoneNumber"], service, order_id)

    def bought(
        self, activation_id: int, buyer: Buyer, phone: str, service: str, order_id: str | None
    ) -> None:
        bought = Bought(activation_id, buyer, phone, service, order_id, time.monotonic())
        assert activation_id not in self.record.purchases, f"id {activation_id} sold twice"
        self.record.purchases[activation_id] = bought
        self.record.live[activation_id] = bought

    async def _sms(self, client: httpx.AsyncClient) -> None:
        target = self._pick()
        if target is None:
            await self._buy(client)
            return
        body = self.sms_body(self.world.supplier_of(target.phone), target.phone)
        if await self.push(client, body):
            target.coded = True

    async def _sms_repeat(self, client: httpx.AsyncClient) -> None:
        """An agent's resend of an SMS acknowledged already: SUCCESS, stored once."""
        if not self.record.sms:
            await self._sms_stray(client)
            return
        provider_id, sms_id = self.rng.choice(list(self.record.sms))
        phone, text = self.record.sms[(provider_id, sms_id)]
        supplier = next(s for s in self.world.suppliers if s.id == provider_id)
        body = {"action": "PUSH_SMS", "key": supplier.key, "smsId": sms_id}
        await self.push(client, {**body, "phone": int(phone), "phoneFrom": "Service", "text": text})

    async def _sms_stray(self, client: httpx.AsyncClient) -> None:
        """An SMS to any number of a provider: matched if the number is live, else kept."""
        supplier = self.rng.choice(self.world.suppliers)
        await self.push(client, self.sms_body(supplier, self.rng.choice(supplier.phones)))

    async def _set_status(
        self, client: httpx.AsyncClient, target: Bought, status: int
    ) -> str | None:
        params = {"api_key": target.buyer.key, "action": "setStatus", "id": str(target.id)}
        return await self._api(client, {**params, "status": str(status)})

    async def _finish(self, client: httpx.AsyncClient) -> None:
        target = self._pick(coded=True)
        if target is None:
            await self._sms(client)
            return
        if await self._set_status(client, target, 6) == "ACCESS_ACTIVATION":
            self.record.finished.add(target.id)
            self.record.live.pop(target.id, None)

    async def _cancel(self, client: httpx.AsyncClient) -> None:
        target = self._pick(coded=False)
        if target is None:
            await self._buy(client)
            return
        answer = await self._set_status(client, target, 8)
        if answer == "ACCESS_CANCEL":
            self.record.cancelled.add(target.id)
            self.record.live.pop(target.id, None)
        elif answer == "BAD_STATUS":
            target.coded = True  # a code arrived (a stray SMS), or it expired with one

    async def _retry(self, client: httpx.AsyncClient) -> None:
        target = self._pick(coded=True)
        if target is None:
            await self._sms(client)
            return
        await self._set_status(client, target, 3)

    async def _status(self, client: httpx.AsyncClient) -> None:
        target = self._pick()
        if target is None:
            await self._balance(client)
            return
        params = {"api_key": target.buyer.key, "action": "getStatus", "id": str(target.id)}
        await self._api(client, params)

    async def _balance(self, client: httpx.AsyncClient) -> None:
        buyer = self.rng.choice(self.world.buyers)
        await self._api(client, {"api_key": buyer.key, "action": "getBalance"})

    # -- after a restart

    async def recover(
        self,
        base_url: str,
        *,
        committed_orders: set[tuple[int, str]],
        committed_sms: set[tuple[int, int]],
    ) -> None:
        """What an honest client does after an outage: retry every getNumberV2 that got no
        answer, with the same orderId, and resend every SMS not acknowledged. The database
        says which of them had been committed before the kill (``committed_*``): exactly those
        must answer ORDER_ALREADY_EXISTS; every resent SMS must answer SUCCESS."""
        self.killed = False  # the server is up again
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as client:
            for lost in list(self.record.lost_orders.values()):
                self.record.orders_retried += 1
                params = {"api_key": lost.buyer.key, "action": "getNumberV2", "country": "0"}
                body = await self._api(
                    client, {**params, "service": lost.service, "orderId": lost.order_id}
                )
                committed = (lost.buyer.id, lost.order_id) in committed_orders
                assert body is not None, f"retried order {lost.order_id}: no answer"
                if committed:
                    assert body == "ORDER_ALREADY_EXISTS", (
                        f"order {lost.order_id} was committed before the kill; its retry "
                        f"must answer ORDER_ALREADY_EXISTS, got {body!r}"
                    )
                    self.record.orders_committed_unanswered += 1
                elif body.startswith("{"):
                    answer = json.loads(body)
                    self.bought(
                        answer["activationId"],
                        lost.buyer,
                        answer["phoneNumber"],
                        lost.service,
                        lost.order_id,
                    )
                    self.record.orders_rebought += 1
                else:
                    assert body == "NO_NUMBERS", (
                        f"order {lost.order_id} was not committed; its retry must buy or "
                        f"answer NO_NUMBERS, got {body!r}"
                    )
                del self.record.lost_orders[lost.order_id]
            for key, push in list(self.record.lost_sms.items()):
                self.record.sms_resent += 1
                if key in committed_sms and key not in self.record.sms:
                    self.record.sms_committed_unanswered += 1
                assert await self.push(client, push), f"resent SMS {key}: not SUCCESS"
