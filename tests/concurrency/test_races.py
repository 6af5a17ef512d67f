"""Races over real HTTP on 127.0.0.1, on SQLite and on PostgreSQL.

Many clients fire at once through a live server; afterwards the answers, the database and
the auditor must agree that no number was sold twice and no money was spent twice. The two
big races each have a negative control: the same harness, run against a deliberately naive
implementation, must fail, which proves the harness can see the bug it guards against.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

import pytest

from otphub.db import inventory, ledger
from tests import support
from tests.concurrency import harness
from tests.concurrency.harness import (
    HANDLER,
    Call,
    MoneyRace,
    NumberRace,
    Wallet,
    check_money_race,
    check_number_race,
    fire,
    fire_api,
    fire_json,
)
from tests.support import Hub

PRICE = "0.50"
PAYOUT = "0.40"
SMS_PATH = "/agent/api/sms"

R = TypeVar("R")
Firing = Callable[[], AbstractContextManager[None]]


# ---------------------------------------------------------------- scenarios


def number_race(
    hub: Hub,
    *,
    buyers: int,
    stock: int,
    service: str = "tg",
    first_phone: int = 79000000001,
    firing: Firing = nullcontext,
) -> NumberRace:
    """``buyers`` distinct funded customers each fire one getNumber at once for ``stock``
    numbers of one offer. ``firing`` wraps the burst (the negative controls' patches)."""
    seller = hub.stocked(count=stock, service=service, price=PRICE, first_phone=first_phone)
    people = harness.buyers(hub, buyers, "1.00")
    with firing():
        answers = fire_api(
            hub.url,
            [{"api_key": b.key, "action": "getNumber", "service": service} for b in people],
        )
    return NumberRace(
        price=hub.money(PRICE),
        stock=stock,
        buyers=people,
        answers=answers,
        live=harness.live_activations(hub, provider_id=seller.id),
        wallets=harness.wallets(hub, [b.id for b in people]),
        audit=harness.audit_problems(hub),
    )


def money_race(
    hub: Hub,
    *,
    requests: int,
    affordable: int,
    stock: int,
    service: str = "tg",
    first_phone: int = 79000000001,
    firing: Firing = nullcontext,
) -> MoneyRace:
    """One customer funded for exactly ``affordable`` purchases fires ``requests`` getNumber
    at once, with more numbers than requests."""
    hub.stocked(count=stock, service=service, price=PRICE, first_phone=first_phone)
    price = hub.money(PRICE)
    funded = price * affordable
    customer_id, key = hub.customer_id(hub.rt.money.format(funded))
    with firing():
        answers = fire_api(
            hub.url, [{"api_key": key, "action": "getNumber", "service": service}] * requests
        )
    return MoneyRace(
        key=key,
        price=price,
        funded=funded,
        answers=answers,
        live=harness.live_count(hub, customer_id=customer_id),
        wallet=harness.wallets(hub, [customer_id])[customer_id],
        audit=harness.audit_problems(hub),
    )


# ---------------------------------------------------------------- the races


def test_200_buyers_for_50_numbers_each_number_sold_once(hub: Hub) -> None:
    race = number_race(hub, buyers=200, stock=50)
    check_number_race(race)
    assert Counter(a.split(":")[0] for a in race.answers) == {
        "ACCESS_NUMBER": 50,
        "NO_NUMBERS": 150,
    }
    assert len({a.phone for a in race.live}) == 50


def test_100_purchases_for_10_purchases_worth_of_money(hub: Hub) -> None:
    race = money_race(hub, requests=100, affordable=10, stock=120)
    check_money_race(race)
    assert Counter(a.split(":")[0] for a in race.answers) == {
        "ACCESS_NUMBER": 10,
        "NO_BALANCE": 90,
    }
    assert race.wallet.available == 0
    assert hub.say(race.key, "getBalance") == "ACCESS_BALANCE:0.00"


def test_finish_and_cancel_racing_after_a_code_move_money_once(hub: Hub) -> None:
    seller = hub.stocked(count=1, price=PRICE, payout=PAYOUT)
    customer_id, key = hub.customer_id("1.00")
    activation_id, phone = hub.buy(key)
    assert hub.push_sms(seller, phone, "Your code: 48213").json() == {"status": "SUCCESS"}
    # Past the early-cancel window: only the delivered code forbids the cancel.
    hub.clock.advance(hub.rt.settings.early_cancel + 1)
    statuses = [6, 8] * 25
    answers = fire_api(
        hub.url,
        [
            {"api_key": key, "action": "setStatus", "id": activation_id, "status": s}
            for s in statuses
        ],
    )
    assert {a for s, a in zip(statuses, answers, strict=True) if s == 6} == {"ACCESS_ACTIVATION"}
    assert {a for s, a in zip(statuses, answers, strict=True) if s == 8} == {"BAD_STATUS"}
    assert harness.activation_state(hub, activation_id) == "finished"
    assert harness.resolutions(hub, activation_id) == {"hold": 1, "capture": 1, "share": 1}
    assert harness.wallets(hub, [customer_id])[customer_id] == Wallet(hub.money("0.50"), 0)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.50"
    hub.assert_audit_clean()


def test_finish_and_cancel_racing_without_a_code_move_money_once(hub: Hub) -> None:
    hub.stocked(count=1, price=PRICE, payout=PAYOUT)
    customer_id, key = hub.customer_id("1.00")
    activation_id, _ = hub.buy(key)
    hub.clock.advance(hub.rt.settings.early_cancel + 1)
    statuses = [6, 8, -1] * 17
    answers = fire_api(
        hub.url,
        [
            {"api_key": key, "action": "setStatus", "id": activation_id, "status": s}
            for s in statuses
        ],
    )
    assert {a for s, a in zip(statuses, answers, strict=True) if s == 6} == {"BAD_STATUS"}
    assert {a for s, a in zip(statuses, answers, strict=True) if s != 6} == {"ACCESS_CANCEL"}
    assert harness.activation_state(hub, activation_id) == "cancelled"
    assert harness.resolutions(hub, activation_id) == {"hold": 1, "release": 1}
    assert harness.wallets(hub, [customer_id])[customer_id] == Wallet(hub.money("1.00"), 0)
    hub.assert_audit_clean()


def test_cancel_finish_and_an_incoming_sms_racing_resolve_the_hold_once(hub: Hub) -> None:
    """Which of the cancel and the SMS wins is up to the scheduler; either way the answers,
    the state and the money tell one consistent story. The SMS leads each burst, and the
    first cancel follows it by more requests in each round, so that both outcomes do occur
    over the rounds (not necessarily in every run)."""
    rounds = 8
    seller = hub.stocked(count=rounds, price=PRICE, payout=PAYOUT)
    key = hub.customer("10.00")
    for round_no in range(rounds):
        activation_id, phone = hub.buy(key)
        hub.clock.advance(hub.rt.settings.early_cancel + 1)
        statuses = [6] * (3 * round_no) + [8, 6] * 3
        calls = [
            Call(
                HANDLER,
                params={"api_key": key, "action": "setStatus", "id": activation_id, "status": s},
            )
            for s in statuses
        ]
        sms_id = 1000 + round_no
        sms = {
            "action": "PUSH_SMS",
            "key": seller.key,
            "smsId": sms_id,
            "phone": int(phone),
            "phoneFrom": "Telegram",
            "text": "Telegram code 991-204",
        }
        answers = fire(hub.url, [Call(SMS_PATH, json=sms), *calls])
        assert answers.pop(0) == '{"status":"SUCCESS"}'
        assert harness.sms_count(hub, provider_id=seller.id, provider_sms_id=sms_id) == 1
        cancels = {a for s, a in zip(statuses, answers, strict=True) if s == 8}
        finishes = {a for s, a in zip(statuses, answers, strict=True) if s == 6}
        state = harness.activation_state(hub, activation_id)
        moves = harness.resolutions(hub, activation_id)
        if cancels == {"ACCESS_CANCEL"}:
            assert finishes == {"BAD_STATUS"}, answers
            assert state == "cancelled"
            assert moves == {"hold": 1, "release": 1}
        else:
            # The SMS came first: no cancel may pass any more, and finishing is allowed.
            assert cancels == {"BAD_STATUS"}, answers
            assert finishes <= {"BAD_STATUS", "ACCESS_ACTIVATION"}, answers
            if "ACCESS_ACTIVATION" in finishes:
                assert state == "finished"
                assert moves == {"hold": 1, "capture": 1, "share": 1}
            else:
                assert state == "code"
                assert moves == {"hold": 1}
        hub.assert_audit_clean()


def test_duplicate_push_sms_racing_is_stored_once(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, phone = hub.buy(key)
    body = {
        "action": "PUSH_SMS",
        "key": seller.key,
        "smsId": 777,
        "phone": int(phone),
        "phoneFrom": "Telegram",
        "text": "Your code: 48213",
    }
    answers = fire_json(hub.url, SMS_PATH, [body] * 30)
    assert set(answers) == {'{"status":"SUCCESS"}'}
    assert harness.sms_count(hub, provider_id=seller.id, provider_sms_id=777) == 1
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:48213"


def test_repeated_order_id_racing_buys_once(hub: Hub) -> None:
    hub.stocked(count=30)
    customer_id, key = hub.customer_id("10.00")
    query = {"api_key": key, "action": "getNumberV2", "service": "tg", "orderId": "order-1"}
    answers = fire_api(hub.url, [query] * 20)
    bought = [a for a in answers if a.startswith("{")]
    assert len(bought) == 1, Counter(answers)
    assert Counter(a for a in answers if not a.startswith("{")) == {"ORDER_ALREADY_EXISTS": 19}
    assert harness.orders(hub, customer_id=customer_id, order_id="order-1") == 1
    assert harness.wallets(hub, [customer_id])[customer_id] == Wallet(hub.money("10.00"), 50)


@pytest.mark.parametrize("hub_settings", [{"max_live_activations": 3}])
def test_live_activation_cap_holds_under_a_burst(hub: Hub) -> None:
    hub.stocked(count=40)
    customer_id, key = hub.customer_id("10.00")
    answers = fire_api(hub.url, [{"api_key": key, "action": "getNumber", "service": "tg"}] * 30)
    assert Counter(a.split(":")[0] for a in answers) == {"ACCESS_NUMBER": 3, "CHANNELS_LIMIT": 27}
    assert harness.live_count(hub, customer_id=customer_id) == 3


# ---------------------------------------------------------------- negative controls


@pytest.fixture
def lab(live_server: support.LiveServer, database_url: str, backend: str) -> Iterator[Hub]:
    """A deployment like ``hub`` for the negative controls, which corrupt it on purpose:
    no audit after the test, and the PostgreSQL database, which the whole session shares,
    is emptied and gets back the index a control may drop."""
    deployment = support.install(live_server, database_url, backend)
    index_sql = harness.live_number_index_sql(deployment)
    try:
        yield deployment
    finally:
        try:
            if backend == "postgresql":
                harness.restore_pg(deployment, index_sql, support.DATA_TABLES)
        finally:
            support.uninstall(deployment)


ATTEMPTS = 3


def caught(run: Callable[[int], R], check: Callable[[R], None], tag: str) -> R:
    """Run the naive scenario until the checker reports ``tag`` (at most ``ATTEMPTS`` times,
    each on fresh data), and return that run's result.

    A race is a matter of scheduling: a run that happens to serialise by chance would let a
    naive implementation pass, so a control that ran once could flake. With a 5 ms window
    between the read and the write and dozens of requests in flight a single run is in
    practice always enough; the retries make that certain.
    """
    result = run(0)
    for attempt in range(1, ATTEMPTS):
        try:
            check(result)
        except AssertionError as problem:
            if tag in str(problem):
                break
        result = run(attempt)
    return result


def test_negative_control_naive_claim_is_caught_overselling(
    lab: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the database's backstop, the naive double sale commits instead of failing
    # with ERROR_SQL, so what the checker sees is the harness's own detection.
    harness.drop_live_number_index(lab)
    monkeypatch.setattr(inventory, "claim_number", harness.naive_claim_number)
    services = ("tg", "wa", "vk")

    def run(attempt: int) -> NumberRace:
        return number_race(
            lab,
            buyers=200,
            stock=50,
            service=services[attempt],
            first_phone=79100000000 + 1000 * attempt,
            firing=lambda: harness.unserialised_writes(lab),
        )

    race = caught(run, check_number_race, "OVERSOLD")
    with pytest.raises(AssertionError, match="OVERSOLD"):
        check_number_race(race)


def test_negative_control_naive_hold_is_caught_overspending(
    lab: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "place_hold", harness.naive_place_hold)
    # The wallet lock serialises one customer's purchases on PostgreSQL; the naive hold
    # is only naive without it.
    monkeypatch.setattr(ledger, "lock_wallet", harness.no_wallet_lock)
    services = ("tg", "wa", "vk")

    def run(attempt: int) -> MoneyRace:
        return money_race(
            lab,
            requests=100,
            affordable=10,
            stock=120,
            service=services[attempt],
            first_phone=79100000000 + 1000 * attempt,
            firing=lambda: harness.unserialised_writes(lab),
        )

    race = caught(run, check_money_race, "OVERSPENT")
    with pytest.raises(AssertionError, match="OVERSPENT"):
        check_money_race(race)
