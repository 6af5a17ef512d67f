"""The activation lifecycle with an injected clock: early cancel, expiry, the sweeper,
and where the money goes at each end."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from otphub.db.schema import activations, sms
from otphub.services import accounts, inventory, lifecycle
from otphub.workers.sweeper import run_sweeper
from tests.support import Hub

SPEC_INSTANT = 1_780_335_057  # 2026-06-01 17:30:57 UTC, the specification's example time


def provider_balance(hub: Hub, provider_id: int) -> int:
    return hub.call(accounts.provider_balance(hub.rt, provider_id))


def activation_state(hub: Hub, activation_id: int) -> str:
    async def read() -> str:
        async with hub.rt.db.read() as conn:
            query = select(activations.c.state).where(activations.c.id == activation_id)
            return str((await conn.execute(query)).scalar_one())

    return hub.call(read())


def test_cancel_is_denied_inside_the_early_cancel_window(hub: Hub) -> None:
    hub.stocked()
    key = hub.customer("1.00")
    activation_id, _ = hub.buy(key)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.50"
    hub.clock.advance(119)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "EARLY_CANCEL_DENIED"
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    hub.clock.advance(1)
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"
    assert hub.say(key, "setStatus", id=activation_id, status=-1) == "ACCESS_CANCEL"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"


def test_expiry_without_a_code_refunds_on_first_touch(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, _ = hub.buy(key)
    hub.clock.advance(1199)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    hub.clock.advance(1)
    # No client ever sees "waiting" after the deadline.
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert activation_state(hub, activation_id) == "cancelled"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"
    assert provider_balance(hub, seller.id) == 0
    # The number may be sold again, for the same service: to anyone but this customer
    # (an activation that ran out without a code counts as cancelled by its customer).
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    again, _ = hub.buy(hub.customer("1.00", name="other"))
    assert again != activation_id


def test_expiry_with_a_code_captures(hub: Hub) -> None:
    seller = hub.stocked(count=1, price="0.50", payout="0.40")
    key = hub.customer("1.00")
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Your code: 55123")
    hub.clock.advance(1200)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert activation_state(hub, activation_id) == "finished"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.50"
    assert provider_balance(hub, seller.id) == 40
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "BAD_STATUS"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.50"
    report = hub.audit()
    assert report.totals["revenue"] == 10
    assert report.totals["payables"] == 40


def test_set_status_after_the_deadline_sees_the_resolved_activation(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("1.00")
    waiting, _ = hub.buy(key)
    hub.clock.advance(5000)
    assert hub.say(key, "setStatus", id=waiting, status=8) == "ACCESS_CANCEL"
    assert hub.say(key, "setStatus", id=waiting, status=1) == "BAD_STATUS"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"


def test_the_sweeper_resolves_overdue_activations_in_batches(hub: Hub) -> None:
    seller = hub.stocked(count=7)
    key = hub.customer("10.00")
    bought = [hub.buy(key) for _ in range(7)]
    for activation_id, phone in bought[:3]:
        hub.push_sms(seller, phone, f"code {activation_id}000")
    hub.clock.advance(1200)
    assert hub.call(lifecycle.sweep(hub.rt, batch=2)) == 7
    states = [activation_state(hub, activation_id) for activation_id, _ in bought]
    assert states == ["finished"] * 3 + ["cancelled"] * 4
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:8.50"
    assert provider_balance(hub, seller.id) == 3 * 40
    assert hub.call(lifecycle.sweep(hub.rt)) == 0


def test_the_sweeper_loop_runs_in_the_server_process(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, _ = hub.buy(key)
    hub.clock.advance(1200)

    async def run_for_a_moment() -> None:
        task = asyncio.create_task(run_sweeper(hub.rt))
        for _ in range(50):
            await asyncio.sleep(0.05)
            async with hub.rt.db.read() as conn:
                query = select(activations.c.state).where(activations.c.id == activation_id)
                if (await conn.execute(query)).scalar_one() == "cancelled":
                    break
        task.cancel()

    hub.call(run_for_a_moment())
    assert activation_state(hub, activation_id) == "cancelled"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"


def test_an_sms_after_the_deadline_is_kept_unmatched(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, phone = hub.buy(key)
    hub.clock.advance(1200)
    response = hub.push_sms(seller, phone, "Your code: 11111")
    assert response.json() == {"status": "SUCCESS"}
    assert activation_state(hub, activation_id) == "cancelled"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"

    async def unmatched() -> int:
        async with hub.rt.db.read() as conn:
            query = select(func.count()).select_from(sms).where(sms.c.activation_id.is_(None))
            return int((await conn.execute(query)).scalar_one())

    assert hub.call(unmatched()) == 1


def test_retry_then_new_sms_then_finish(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, phone = hub.buy(key)
    assert hub.say(key, "setStatus", id=activation_id, status=1) == "ACCESS_READY"
    assert hub.say(key, "setStatus", id=activation_id, status=1) == "ACCESS_READY"
    hub.push_sms(seller, phone, "Your code: 11111")
    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_RETRY:11111"
    hub.push_sms(seller, phone, "Your code: 22222")
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:22222"
    assert hub.say(key, "getFullSms", id=activation_id) == "FULL_SMS:Your code: 22222"
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_CANCEL"
    assert hub.say(key, "getFullSms", id=activation_id) == "FULL_SMS:Your code: 22222"


def test_a_finished_number_is_never_sold_again_for_that_service(hub: Hub) -> None:
    seller = hub.stocked(count=1, service="tg")
    hub.offer(seller, service="wa", price="0.30")
    key = hub.customer("5.00")
    activation_id, phone = hub.buy(key, "tg")
    hub.push_sms(seller, phone, "code 12345")
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    assert hub.say(key, "getPrices", service="tg") == "{}"
    # ... but it may be sold for another service.
    _, same_phone = hub.buy(key, "wa")
    assert same_phone == phone


def test_a_live_number_is_not_in_stock(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("5.00")
    prices = '{"0":{"tg":{"cost":0.5,"count":%d,"physicalCount":%d}}}'
    assert hub.say(key, "getPrices") == prices % (2, 2)
    activation_id, _ = hub.buy(key)
    assert hub.say(key, "getPrices") == prices % (1, 1)
    hub.clock.advance(120)
    hub.say(key, "setStatus", id=activation_id, status=8)
    assert hub.say(key, "getPrices") == prices % (2, 2)


def test_a_price_change_does_not_touch_a_live_hold(hub: Hub) -> None:
    seller = hub.stocked(count=2, price="0.50", payout="0.40")
    key = hub.customer("2.00")
    activation_id, phone = hub.buy(key)
    hub.offer(seller, price="0.80", payout="0.70")
    hub.push_sms(seller, phone, "code 12345")
    hub.say(key, "setStatus", id=activation_id, status=6)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.50"
    assert provider_balance(hub, seller.id) == 40
    hub.buy(key)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.70"


def test_the_cheapest_offer_wins_and_margin_splits_exactly(hub: Hub) -> None:
    dear = hub.stocked(count=1, price="0.70", payout="0.60", first_phone=79000000100)
    cheap = hub.stocked(count=1, price="0.33", payout="0.17", first_phone=79000000200)
    key = hub.customer("1.03")
    first, phone = hub.buy(key)
    assert phone == "79000000200"
    hub.push_sms(cheap, phone, "code 4444")
    hub.say(key, "setStatus", id=first, status=6)
    second, phone = hub.buy(key)
    assert phone == "79000000100"
    hub.push_sms(dear, phone, "code 5555")
    hub.say(key, "setStatus", id=second, status=6)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.00"
    assert provider_balance(hub, cheap.id) == 17
    assert provider_balance(hub, dear.id) == 60
    totals = hub.audit().totals
    assert totals["revenue"] == (33 - 17) + (70 - 60)
    assert totals["wallets"] + totals["payables"] + totals["revenue"] == 103


def test_ref_and_order_id_are_recorded(hub: Hub) -> None:
    hub.stocked()
    key = hub.customer()
    response = hub.api(key, "getNumberV2", service="tg", ref="partner7", orderId="o-1")
    activation_id = response.json()["activationId"]

    async def read() -> tuple[str, str]:
        async with hub.rt.db.read() as conn:
            query = select(activations.c.ref, activations.c.order_id).where(
                activations.c.id == activation_id
            )
            row = (await conn.execute(query)).one()
            return row.ref, row.order_id

    assert hub.call(read()) == ("partner7", "o-1")


def test_price_ties_go_to_the_provider_with_the_better_delivery_record(hub: Hub) -> None:
    good = hub.stocked(count=4, price="0.50", first_phone=79000000100)
    bad = hub.stocked(count=4, price="0.50", first_phone=79000000200)
    key = hub.customer("10.00")
    # The record: two activations each; good's are finished, bad's cancelled.
    for _ in range(2):
        activation_id, phone = hub.buy(key, providerIds=good.id)
        hub.push_sms(good, phone, "code 12345")
        hub.say(key, "setStatus", id=activation_id, status=6)
        activation_id, _ = hub.buy(key, providerIds=bad.id)
        hub.clock.advance(120)
        hub.say(key, "setStatus", id=activation_id, status=8)
    hub.call(inventory.refresh_delivery_scores(hub.rt))
    for _ in range(2):
        activation_id, phone = hub.buy(key)
        assert phone.startswith("790000001"), phone
        hub.clock.advance(120)
        hub.say(key, "setStatus", id=activation_id, status=8)


# Written out, not computed with the server's formatter: a formatter without seconds or in
# the wrong zone would agree with itself.
@pytest.mark.parametrize(
    ("hub_settings", "start", "end"),
    [
        ({}, "2026-06-01 17:30:57", "2026-06-01 17:35:57"),
        ({"time_zone": "America/New_York"}, "2026-06-01 13:30:57", "2026-06-01 13:35:57"),
    ],
    ids=["UTC", "America/New_York"],
)
def test_an_offer_may_set_its_own_activation_lifetime(hub: Hub, start: str, end: str) -> None:
    seller = hub.stocked(count=1, service="tg")
    hub.call(
        inventory.set_offer(
            hub.rt, provider_id=seller.id, service="wa", country_id=0, price=30, ttl=300
        )
    )
    key = hub.customer("1.00")
    hub.clock.advance(SPEC_INSTANT - hub.clock.now())
    response = hub.api(key, "getNumberV2", service="wa").json()
    assert response["activationTime"] == start
    assert response["activationEndTime"] == end
    hub.clock.advance(300)
    assert hub.say(key, "getStatus", id=response["activationId"]) == "STATUS_CANCEL"


def test_overdue_holds_come_back_before_the_sweeper_runs(hub: Hub) -> None:
    """getBalance and getNumber resolve the customer's own overdue activations first."""
    seller = hub.stocked(count=1)
    key = hub.customer("0.50")
    hub.buy(key)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.00"
    hub.clock.advance(1200)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.50"
    # ... and the money is there for the same customer's next purchase (of another number:
    # the expired one counts as cancelled by this customer).
    hub.numbers(seller, ["79000000009"])
    hub.buy(key)
