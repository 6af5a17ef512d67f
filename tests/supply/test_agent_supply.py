"""Agent providers end to end, on both databases, against a fake SMSHub agent on
127.0.0.1: stock from GET_SERVICES in every stock answer, purchases through GET_NUMBER in
durable phases, the pushed SMS reaching the customer, FINISH_ACTIVATION through the
outbox, and every way an agent can fail costing the customer nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from sqlalchemy import select

from otphub.db.schema import remote_purchases
from otphub.services import remote_purchase, suppliers
from tests.supply.conftest import connect, deliver, poll, stocked_agent
from tests.supply.fake_agent import FakeAgent
from tests.support import Hub


def rows(hub: Hub, query: Any) -> list[Any]:
    async def run() -> list[Any]:
        async with hub.rt.db.read() as conn:
            return list((await conn.execute(query)).all())

    return hub.call(run())


def purchases(hub: Hub) -> list[tuple[str, str | None]]:
    found = rows(
        hub,
        select(remote_purchases.c.state, remote_purchases.c.note).order_by(remote_purchases.c.id),
    )
    return [(r.state, r.note) for r in found]


def balance(hub: Hub, key: str) -> str:
    return hub.say(key, "getBalance")


def prices(hub: Hub, key: str, **params: Any) -> Any:
    return json.loads(hub.say(key, "getPrices", **params))


# ---------------------------------------------------------------- stock


def test_stock_appears_in_every_stock_answer_after_a_poll(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer()
    seller = connect(hub, agent)
    hub.offer(seller, service="tg", country=0, price="0.40", payout="0.30")
    hub.offer(seller, service="wa", country=16, price="0.60", payout="0.50")
    agent.behaviour.stock = {
        "russia": {"beeline": {"tg": 5, "zz_unknown": 9}, "megafon": {"tg": 2}},
        "england": {"any": {"wa": 3}},
        "atlantis": {"any": {"tg": 50}},  # unknown country: skipped
    }
    assert prices(hub, key, service="tg", country="0") == {}
    assert poll(hub) == 1
    request = agent.of("GET_SERVICES")[0]
    assert request == {"action": "GET_SERVICES", "key": seller.key}
    assert prices(hub, key, service="tg", country="0") == {
        "0": {"tg": {"cost": 0.4, "count": 7, "physicalCount": 7}}
    }
    assert prices(hub, key, service="wa") == {
        "16": {"wa": {"cost": 0.6, "count": 3, "physicalCount": 3}}
    }
    v3 = json.loads(hub.say(key, "getPricesV3", service="tg", country="0"))
    assert v3 == {
        "0": {"tg": {str(seller.id): {"count": 7, "price": 0.4, "provider_id": seller.id}}}
    }
    status = json.loads(hub.say(key, "getNumbersStatus", country="0", operator="beeline"))
    assert status == {"tg_0": "5"}
    top = json.loads(hub.say(key, "getTopCountriesByService", service="tg"))
    assert top["0"]["count"] == 7
    operators = json.loads(hub.say(key, "getOperators", country="0"))
    assert "beeline" in json.dumps(operators) and "megafon" in json.dumps(operators)
    # A second poll in the same period is not this process's turn (fleet-wide once).
    assert poll(hub) == 0


def test_poller_marks_an_agent_down_and_up_again(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer()
    seller = stocked_agent(hub, agent)
    assert prices(hub, key, service="tg")["0"]["tg"]["count"] == 5
    agent.behaviour.raw = (
        b'{"countryList": [{"country": "russia", "operatorMap": {"any": {"tg": "5"}}}],'
        b' "status": "SUCCESS"}'
    )
    hub.clock.advance(15)
    assert poll(hub) == 1
    provider = hub.call(suppliers.remote_provider(hub.rt, seller.id))
    assert provider is not None and provider.down_since is not None
    assert prices(hub, key, service="tg") == {}
    agent.behaviour.raw = None
    hub.clock.advance(15)
    assert poll(hub) == 1
    provider = hub.call(suppliers.remote_provider(hub.rt, seller.id))
    assert provider is not None and provider.down_since is None
    assert prices(hub, key, service="tg")["0"]["tg"]["count"] == 5
    # The poller stopped: after three periods the stock is stale and off sale.
    hub.clock.advance(3 * 15 + 1)
    assert prices(hub, key, service="tg") == {}


# ---------------------------------------------------------------- purchase, SMS, finish


def test_purchase_sms_finish_and_the_agent_hears_of_each(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    seller = stocked_agent(hub, agent, price="0.50", payout="0.40")
    agent.behaviour.numbers = [(79281234567, 355)]
    activation_id, phone = hub.buy(key, "tg", country="0", phoneException="7918,79190")
    assert phone == "79281234567"
    asked = agent.of("GET_NUMBER")
    assert asked == [
        {
            "action": "GET_NUMBER",
            "key": seller.key,
            "country": "russia",
            "operator": "any",
            "service": "tg",
            "sum": 0.4,
            "currency": 840,
            "exceptionPhoneSet": ["7918", "79190"],
        }
    ]
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert purchases(hub) == [("attached", None)]
    # The agent pushes the SMS with its key: the customer sees the code.
    pushed = hub.push_sms(seller, phone, "Telegram code: 33708")
    assert pushed.status_code == 200, pushed.text
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:33708"
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert agent.of("FINISH_ACTIVATION") == []  # only through the outbox
    assert deliver(hub) == 1
    assert agent.of("FINISH_ACTIVATION") == [
        {"action": "FINISH_ACTIVATION", "key": seller.key, "activationId": 355, "status": 3}
    ]
    assert deliver(hub) == 0  # delivered once


def test_cancel_and_expiry_send_4_refund_sends_5(hub: Hub, agent: FakeAgent) -> None:
    from otphub.services import disputes

    key = hub.customer("10.00")
    seller = stocked_agent(hub, agent, price="0.50", payout="0.40")
    agent.behaviour.numbers = [(79280000001, 1), (79280000002, 2), (79280000003, 3)]
    cancelled, _ = hub.buy(key, "tg", country="0")
    hub.clock.advance(hub.rt.settings.early_cancel)
    poll(hub)  # the stock would be stale by now
    assert hub.say(key, "setStatus", id=cancelled, status=8) == "ACCESS_CANCEL"
    expired, _ = hub.buy(key, "tg", country="0")
    refunded, phone = hub.buy(key, "tg", country="0")
    hub.push_sms(seller, phone, "code 4242")
    assert hub.say(key, "setStatus", id=refunded, status=6) == "ACCESS_ACTIVATION"
    hub.clock.advance(hub.rt.settings.activation_ttl + 1)
    assert hub.say(key, "getStatus", id=expired) == "STATUS_CANCEL"
    hub.call(disputes.refund_activation(hub.rt, activation_id=refunded, reason="no code"))
    deliver(hub)
    sent = {(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")}
    assert sent == {(1, 4), (2, 4), (3, 3), (3, 5)}
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_the_outbox_retries_until_the_agent_answers_success(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer()
    seller = stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79280000001, 77)]
    activation_id, phone = hub.buy(key, "tg")
    hub.push_sms(seller, phone, "code 1234")
    hub.say(key, "setStatus", id=activation_id, status=6)
    agent.behaviour.finish_failures = 2
    assert deliver(hub) == 1  # ERROR: retried later
    assert deliver(hub) == 0  # not due yet (backoff)
    hub.clock.advance(10)
    assert deliver(hub) == 1  # ERROR again
    hub.clock.advance(600)
    assert deliver(hub) == 1  # SUCCESS
    hub.clock.advance(600)
    assert deliver(hub) == 0
    assert [r["status"] for r in agent.of("FINISH_ACTIVATION")] == [3, 3, 3]


def test_the_outbox_waits_while_the_agent_is_down(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer()
    seller = stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79280000001, 78)]
    activation_id, _ = hub.buy(key, "tg")
    hub.clock.advance(hub.rt.settings.early_cancel)
    hub.say(key, "setStatus", id=activation_id, status=8)
    agent.down()
    for _ in range(3):
        assert deliver(hub) == 1
        hub.clock.advance(600)
    # Back on a new address: the operator points the provider there.
    again = FakeAgent().start()
    try:
        hub.call(suppliers.set_connection(hub.rt, provider_id=seller.id, agent_url=again.url))
        assert deliver(hub) == 1
        assert again.of("FINISH_ACTIVATION")[0]["status"] == 4
    finally:
        again.stop()


# ---------------------------------------------------------------- failures fall through


FAILURES = ("timeout", "no_numbers", "strings", "float", "huge", "not_json", "error", "down")


def fail_the_agent(hub: Hub, agent: FakeAgent, how: str) -> None:
    b = agent.behaviour
    b.raw_for = {"GET_NUMBER"}
    if how == "timeout":
        b.hang = {"GET_NUMBER"}
        hub.rt.settings.agent_timeout_seconds = 0.5  # the purchase waits this long
    elif how == "no_numbers":
        b.numbers = []
    elif how == "strings":
        b.raw = b'{"number": "79281234567", "activationId": "5", "status": "SUCCESS"}'
    elif how == "float":
        b.raw = b'{"number": 79281234567, "activationId": 5.0, "status": "SUCCESS"}'
    elif how == "huge":
        b.raw = b'{"status": "SUCCESS", "pad": "' + b"x" * 100_000 + b'"}'
    elif how == "not_json":
        b.raw = b"<html>502 Bad Gateway</html>"
    elif how == "error":
        b.raw = b'{"status": "ERROR", "error": "modem on fire"}'
    elif how == "down":
        agent.down()


@pytest.mark.parametrize("how", FAILURES)
def test_a_failing_agent_costs_nothing_and_falls_through_to_the_next_offer(
    hub: Hub, agent: FakeAgent, how: str
) -> None:
    key = hub.customer("10.00")
    seller = stocked_agent(hub, agent, price="0.40", payout="0.30")  # the cheapest offer
    hub.stocked(count=1, price="0.50", first_phone=79990000001)
    fail_the_agent(hub, agent, how)
    _, phone = hub.buy(key, "tg", country="0")
    agent.release()
    assert phone == "79990000001"  # the local offer's number
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"
    assert [state for state, _ in purchases(hub)] == ["failed"]
    provider = hub.call(suppliers.remote_provider(hub.rt, seller.id))
    assert provider is not None
    # NO_NUMBERS is an answer, not a failure of the agent.
    assert (provider.down_since is None) == (how == "no_numbers")


def test_when_every_candidate_fails_the_answer_is_no_numbers(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent)
    fail_the_agent(hub, agent, "not_json")
    assert hub.say(key, "getNumber", service="tg", country="0") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_a_number_of_another_country_is_refused_and_given_back(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent)
    agent.behaviour.numbers = [(380501234567, 9)]  # Ukraine, asked for Russia
    assert hub.say(key, "getNumber", service="tg", country="0") == "NO_NUMBERS"
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    assert deliver(hub) == 1
    assert [(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")] == [(9, 4)]


def test_an_excluded_prefix_is_refused_and_given_back(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79181234567, 10)]
    assert hub.say(key, "getNumber", service="tg", phoneException="7918") == "NO_NUMBERS"
    deliver(hub)
    assert [(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")] == [(10, 4)]
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"


def test_a_number_in_a_live_activation_is_not_attached_twice(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79281234567, 1), (79281234567, 2)]
    hub.buy(key, "tg")
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    deliver(hub)
    assert [(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")] == [(2, 4)]
    assert balance(hub, key) == "ACCESS_BALANCE:9.60"


# ---------------------------------------------------------------- concurrency, recovery


def test_a_slow_agent_does_not_delay_a_purchase_from_another_provider(
    hub: Hub, agent: FakeAgent
) -> None:
    slow_buyer = hub.customer("10.00", name="slow")
    other_buyer = hub.customer("10.00", name="other")
    stocked_agent(hub, agent)
    hub.stocked(count=1, service="wa", price="0.50", first_phone=79990000001)
    agent.behaviour.numbers = [(79281234567, 355)]
    agent.behaviour.hang = {"GET_NUMBER"}
    hub.rt.settings.agent_timeout_seconds = 30  # the slow purchase waits until released
    answers: list[str] = []
    slow = threading.Thread(
        target=lambda: answers.append(hub.say(slow_buyer, "getNumber", service="tg"))
    )
    slow.start()
    try:
        agent.wait_for("GET_NUMBER")
        # The agent holds its GET_NUMBER open: another provider's sale completes meanwhile.
        _, phone = hub.buy(other_buyer, "wa")
        assert phone == "79990000001"
        assert answers == []
    finally:
        agent.release()
        slow.join(timeout=30)
    assert answers and answers[0].endswith(":79281234567")


def test_recovery_releases_a_purchase_left_pending_and_a_late_number_goes_back(
    hub: Hub, agent: FakeAgent
) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79281234567, 355)]
    agent.behaviour.hang = {"GET_NUMBER"}
    hub.rt.settings.agent_timeout_seconds = 30
    answers: list[str] = []
    buyer = threading.Thread(target=lambda: answers.append(hub.say(key, "getNumber", service="tg")))
    buyer.start()
    try:
        agent.wait_for("GET_NUMBER")
        assert balance(hub, key) == "ACCESS_BALANCE:9.60"  # held while pending
        assert hub.call(remote_purchase.recover(hub.rt)) == 0  # not overdue yet
        hub.clock.advance(31 + 31)
        assert hub.call(remote_purchase.recover(hub.rt)) == 1
        assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    finally:
        agent.release()
        buyer.join(timeout=30)
    assert answers == ["NO_NUMBERS"]
    assert purchases(hub) == [("failed", "recovered: left pending")]
    deliver(hub)
    assert [(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")] == [(355, 4)]


def test_pending_purchases_count_toward_the_cap_and_order_id(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent)
    hub.stocked(count=2, price="0.50", first_phone=79990000001)
    agent.behaviour.numbers = [(79281234567, 355)]
    agent.behaviour.hang = {"GET_NUMBER"}
    hub.rt.settings.agent_timeout_seconds = 30
    hub.rt.settings.max_live_activations = 1
    answers: list[str] = []
    buyer = threading.Thread(
        target=lambda: answers.append(hub.say(key, "getNumberV2", service="tg", orderId="order-1"))
    )
    buyer.start()
    try:
        agent.wait_for("GET_NUMBER")
        again = hub.say(key, "getNumberV2", service="tg", orderId="order-1")
        assert again == "ORDER_ALREADY_EXISTS"
        assert hub.say(key, "getNumber", service="tg") == "CHANNELS_LIMIT"
    finally:
        agent.release()
        buyer.join(timeout=30)
    assert "79281234567" in answers[0]


def test_sum_is_an_integer_when_the_payout_is_whole(hub: Hub, agent: FakeAgent) -> None:
    key = hub.customer("10.00")
    stocked_agent(hub, agent, price="1.50", payout="1.00")
    agent.behaviour.numbers = [(79281234567, 1)]
    hub.buy(key, "tg")
    sent = agent.of("GET_NUMBER")[0]
    assert sent["sum"] == 1 and type(sent["sum"]) is int
    assert "exceptionPhoneSet" not in sent


def test_a_full_agent_fails_fast_instead_of_queueing(hub: Hub, agent: FakeAgent) -> None:
    from otphub.domain.supply import NumberRequest
    from otphub.services import agents

    seller = stocked_agent(hub, agent)
    agent.behaviour.hang = {"GET_NUMBER"}
    hub.rt.settings.agent_timeout_seconds = 30

    async def scenario() -> str:
        provider = await suppliers.remote_provider(hub.rt, seller.id)
        assert provider is not None
        request = NumberRequest(1, "tg", 0, "any", 30, ())
        held = [
            asyncio.ensure_future(agents.get_number(hub.rt, provider, request, country="russia"))
            for _ in range(agents.MAX_IN_FLIGHT)
        ]
        await asyncio.to_thread(agent.wait_for, "GET_NUMBER", agents.MAX_IN_FLIGHT)
        try:
            await agents.get_number(hub.rt, provider, request, country="russia")
        except agents.Busy as busy:
            refused = str(busy)
        finally:
            agent.release()
            await asyncio.gather(*held, return_exceptions=True)
        return refused

    assert "in flight" in hub.call(scenario())
    assert len(agent.of("GET_NUMBER")) == agents.MAX_IN_FLIGHT  # the ninth never left


def test_local_sales_beside_an_agent_never_oversell(hub: Hub, agent: FakeAgent) -> None:
    """With an agent provider present, purchases take the path that can call out: local
    numbers are still claimed exactly once under concurrency."""
    stocked_agent(hub, agent, price="0.90", service="wa")  # another service: no candidate
    hub.stocked(count=5, price="0.50", first_phone=79990000001)
    keys = [hub.customer("1.00", name=f"buyer-{i}") for i in range(20)]
    answers: list[str] = []
    lock = threading.Lock()

    def buy(key: str) -> None:
        answer = hub.say(key, "getNumber", service="tg")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=buy, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    sold = [a for a in answers if a.startswith("ACCESS_NUMBER:")]
    assert len(answers) == 20
    assert len(sold) == 5
    assert len({a.rsplit(":", 1)[1] for a in sold}) == 5
    assert set(answers) - set(sold) == {"NO_NUMBERS"}
    assert purchases(hub) == []  # no remote purchase was even started


# ---------------------------------------------------------------- cancelled numbers


def test_a_number_the_customer_cancelled_is_avoided_and_refused_for_that_service(
    hub: Hub, agent: FakeAgent
) -> None:
    key = hub.customer("10.00")
    other = hub.customer("10.00", name="other")
    stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79281234567, 1), (79281234567, 2), (79281234567, 3)]
    first, phone = hub.buy(key, "tg")
    hub.clock.advance(hub.rt.settings.early_cancel)
    poll(hub)
    assert hub.say(key, "setStatus", id=first, status=8) == "ACCESS_CANCEL"
    # The same customer, the same service: the agent is asked to avoid the number, and when
    # it hands it out anyway the number is refused, given back, and costs nothing.
    assert hub.say(key, "getNumber", service="tg") == "NO_NUMBERS"
    assert agent.of("GET_NUMBER")[-1]["exceptionPhoneSet"] == [phone]
    assert balance(hub, key) == "ACCESS_BALANCE:10.00"
    # Another customer may have it.
    again, same_phone = hub.buy(other, "tg")
    assert same_phone == phone
    assert "exceptionPhoneSet" not in agent.of("GET_NUMBER")[-1]
    deliver(hub)
    sent = [(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")]
    assert sent == [(1, 4), (2, 4)]
    del again


def test_a_number_cancelled_max_cancels_times_is_finished_with_status_1(
    hub: Hub, agent: FakeAgent
) -> None:
    hub.rt.settings.max_cancels = 2
    stocked_agent(hub, agent)
    agent.behaviour.numbers = [(79281234567, 1), (79281234567, 2)]
    for n in (1, 2):
        key = hub.customer("10.00", name=f"buyer{n}")
        bought, _ = hub.buy(key, "tg")
        hub.clock.advance(hub.rt.settings.early_cancel)
        poll(hub)
        assert hub.say(key, "setStatus", id=bought, status=8) == "ACCESS_CANCEL"
    deliver(hub)
    # The second cancel retires the number for tg: the agent hears 1, not 4.
    sent = [(r["activationId"], r["status"]) for r in agent.of("FINISH_ACTIVATION")]
    assert sent == [(1, 4), (2, 1)]


def test_a_purchase_passes_a_full_agent_over_before_holding_money(
    hub: Hub, agent: FakeAgent
) -> None:
    from otphub.domain.supply import NumberRequest
    from otphub.services import agents

    key = hub.customer("10.00")
    seller = stocked_agent(hub, agent, price="0.30")
    hub.stocked(count=1, price="0.50", first_phone=79990000001)
    agent.behaviour.hang = {"GET_NUMBER"}
    hub.rt.settings.agent_timeout_seconds = 30

    async def scenario() -> str:
        provider = await suppliers.remote_provider(hub.rt, seller.id)
        assert provider is not None
        request = NumberRequest(1, "tg", 0, "any", 30, ())
        held = [
            asyncio.ensure_future(agents.get_number(hub.rt, provider, request, country="russia"))
            for _ in range(agents.MAX_IN_FLIGHT)
        ]
        await asyncio.to_thread(agent.wait_for, "GET_NUMBER", agents.MAX_IN_FLIGHT)
        try:
            return await asyncio.to_thread(hub.say, key, "getNumber", service="tg")
        finally:
            agent.release()
            await asyncio.gather(*held, return_exceptions=True)

    answer = hub.call(scenario())
    assert answer.startswith("ACCESS_NUMBER:") and answer.endswith(":79990000001"), answer
    # The full agent was passed over: no pending purchase, no hold placed and released.
    assert purchases(hub) == []
    assert balance(hub, key) == "ACCESS_BALANCE:9.50"


def test_a_backlog_of_one_agent_does_not_hold_back_another_agents_messages(
    hub: Hub, agent: FakeAgent
) -> None:
    from otphub.db import outbox as db_outbox
    from otphub.services import agents
    from otphub.services.remote_supply import AGENT_FINISH
    from tests.supply.fake_agent import FakeAgent as Fake

    slow = connect(hub, agent, name="slow")
    other_agent = Fake().start()
    try:
        other = connect(hub, other_agent, name="other")

        async def enqueue() -> None:
            async with hub.rt.db.write() as conn:
                for n, seller in [*((i, slow) for i in range(30)), (99, other)]:
                    await db_outbox.enqueue(
                        conn,
                        is_sqlite=hub.rt.db.is_sqlite,
                        kind=AGENT_FINISH,
                        dedupe_key=f"test:{seller.id}:{n}",
                        payload={"activationId": n + 1, "status": 4},
                        now=hub.clock.now(),
                        provider_id=seller.id,
                    )

        hub.call(enqueue())
        # One round: the other agent's message goes out, and only as many of the slow
        # agent's backlog as it may have calls in flight (they would only queue there).
        assert deliver(hub) == agents.MAX_IN_FLIGHT + 1
        assert [r["activationId"] for r in other_agent.of("FINISH_ACTIVATION")] == [100]
        assert len(agent.of("FINISH_ACTIVATION")) == agents.MAX_IN_FLIGHT
    finally:
        other_agent.stop()
