"""A model-checked ledger and lifecycle.

Hypothesis drives the use cases (top up, buy, SMS, retry, finish, cancel, advance the clock,
touch, sweep) in any order against a plain in-memory model of what must happen. After every
step each balance equals the model's and the auditor finds nothing wrong. Some rules put the
clock exactly on a boundary (the end of the early-cancel window, the deadline: a second
before, on it, a second after) and one takes the common path to a capture in one step:
random single steps reached those about once a run, or never.

CI runs a small budget on both databases. Under CI=true Hypothesis's "ci" profile derandomizes,
so CI runs the same sequences every time (until this file changes): what the budget misses,
it misses every time. A longer, random search (the README gives the command):

    OTPHUB_MODEL_EXAMPLES=1000 .venv/bin/pytest tests/model -q

A failing sequence that Hypothesis finds is kept as a plain test in
``tests/model/test_regressions.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from otphub.domain import errors
from otphub.services import accounts, lifecycle, purchase
from otphub.services.accounts import Customer
from tests import support

CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("OTPHUB_MODEL_EXAMPLES", "30"))
# PostgreSQL runs the same rules three times slower (a database per example, over TCP): half
# the examples there by default keeps the suite within its CI budget; the model's logic is
# the same on both, and OTPHUB_MODEL_EXAMPLES sets both for a deeper run.
PG_EXAMPLES = int(os.environ.get("OTPHUB_MODEL_EXAMPLES", "15"))
STEPS = int(os.environ.get("OTPHUB_MODEL_STEPS", "30"))
TTL = 1200
EARLY = 120
LIVE = ("waiting", "code", "retry")
MAX_CANCELS = 4  # OTPHUB_MAX_CANCELS's default


@dataclass
class Number:
    id: int
    provider: str
    phone: str
    busy_with: int | None = None  # activation id
    finished_for: set[str] = field(default_factory=set)
    # The cancelled-numbers rule: (customer, service) pairs that cancelled it, the cancels
    # per service, and the services it is retired for.
    cancelled_by: set[tuple[int, str]] = field(default_factory=set)
    cancels: dict[str, int] = field(default_factory=dict)
    retired_for: set[str] = field(default_factory=set)


@dataclass
class Activation:
    id: int
    customer: int
    number: Number
    service: str
    price: int
    payout: int
    created: int
    state: str = "waiting"
    code: str | None = None


# provider -> (services -> (price, payout)), in minor units; prices differ so that the
# choice of offer is never a tie.
OFFERS = {"A": {"tg": (50, 40), "wa": (30, 30)}, "B": {"tg": (70, 50)}}
PHONES = {"A": ["79000000001", "79000000002"], "B": ["79000000003", "79000000004"]}


class LedgerMachine(RuleBasedStateMachine):
    activations = Bundle("activations")

    def __init__(self, live: support.LiveServer, make_url: Callable[[], str]) -> None:
        super().__init__()
        self.hub = support.install(live, make_url(), "model")
        self.customers: list[Customer] = []
        self.available: list[int] = []
        self.held: list[int] = []
        self.providers: dict[str, support.Seller] = {}
        self.payable: dict[str, int] = {"A": 0, "B": 0}
        self.numbers: list[Number] = []
        self.model: dict[int, Activation] = {}
        self.sms_id = 0

    # ---------------------------------------------------------------- set-up

    @initialize()
    def deploy(self) -> None:
        hub = self.hub
        for name in ("A", "B"):
            seller = hub.provider(name)
            self.providers[name] = seller
            for service, (price, payout) in OFFERS[name].items():
                hub.offer(
                    seller,
                    service=service,
                    price=hub.rt.money.format(price),
                    payout=hub.rt.money.format(payout),
                )
            hub.numbers(seller, PHONES[name])
        number_id = 0
        for name in ("A", "B"):
            for phone in PHONES[name]:
                number_id += 1
                self.numbers.append(Number(number_id, name, phone))
        for index in range(2):
            created = hub.call(accounts.add_customer(hub.rt, name=f"c{index}", balance=100))
            customer = hub.call(accounts.authenticate_customer(hub.rt, created.api_key))
            self.customers.append(customer)
            self.available.append(100)
            self.held.append(0)

    def teardown(self) -> None:
        support.uninstall(self.hub)

    # ---------------------------------------------------------------- model rules

    @property
    def now(self) -> int:
        return self.hub.clock.now()

    def _resolve(self, act: Activation, *, finish: bool) -> None:
        act.state = "finished" if finish else "cancelled"
        act.number.busy_with = None
        self.held[act.customer] -= act.price
        if finish:
            act.number.finished_for.add(act.service)
            self.payable[act.number.provider] += act.payout
        else:
            self.available[act.customer] += act.price
            number = act.number
            number.cancelled_by.add((act.customer, act.service))
            number.cancels[act.service] = number.cancels.get(act.service, 0) + 1
            if number.cancels[act.service] >= MAX_CANCELS:
                number.retired_for.add(act.service)

    def _touch(self, act: Activation) -> None:
        """What the server does first whenever a request touches an overdue activation."""
        if act.state in LIVE and self.now >= act.created + TTL:
            self._resolve(act, finish=act.state != "waiting")

    def _expected_purchase(self, customer: int, service: str) -> tuple[str, Number | None]:
        offers = sorted((OFFERS[p][service][0], p) for p in OFFERS if service in OFFERS[p])
        for price, provider in offers:
            for number in self.numbers:
                if (
                    number.provider == provider
                    and number.busy_with is None
                    and service not in number.finished_for
                    and service not in number.retired_for
                    and (customer, service) not in number.cancelled_by
                ):
                    if self.available[customer] < price:
                        return "NO_BALANCE", None
                    return "OK", number
        return "NO_NUMBERS", None

    # ---------------------------------------------------------------- rules

    @rule(customer=st.integers(0, 1), amount=st.integers(1, 200))
    def top_up(self, customer: int, amount: int) -> None:
        self.hub.call(
            accounts.top_up(self.hub.rt, customer_id=self.customers[customer].id, amount=amount)
        )
        self.available[customer] += amount

    @rule(target=activations, customer=st.integers(0, 1), service=st.sampled_from(["tg", "wa"]))
    def buy(self, customer: int, service: str) -> int:
        return self._buy(customer, service)

    def _buy(self, customer: int, service: str) -> int:
        """A purchase checked against the model: the new activation's id, or -1 if refused."""
        # A purchase first resolves the buyer's own overdue activations.
        for act in self.model.values():
            if act.customer == customer:
                self._touch(act)
        expected, number = self._expected_purchase(customer, service)
        request = purchase.PurchaseRequest(service=service, country="0")
        try:
            bought = self.hub.call(
                purchase.buy_number(self.hub.rt, customer=self.customers[customer], request=request)
            )
        except errors.ProtocolError as refusal:
            assert refusal.word == expected
            return -1
        assert expected == "OK", f"bought, but the model expected {expected}"
        assert number is not None and bought.phone == number.phone
        price, payout = OFFERS[number.provider][service]
        assert bought.price == price
        act = Activation(bought.activation_id, customer, number, service, price, payout, self.now)
        self.model[act.id] = act
        number.busy_with = act.id
        self.available[customer] -= price
        self.held[customer] += price
        return act.id

    @rule(
        activation=activations,
        text=st.sampled_from(
            ["Your code: 48213", "G-123456 is your code", "Telegram code 991-204", "no code"]
        ),
    )
    def sms(self, activation: int, text: str) -> None:
        act = self.model.get(activation)
        if act is None:
            return
        self.sms_id += 1
        provider = self.hub.call(
            accounts.authenticate_provider(self.hub.rt, self.providers[act.number.provider].key)
        )
        result = self.hub.call(
            lifecycle.ingest_sms(
                self.hub.rt,
                provider=provider,
                provider_sms_id=self.sms_id,
                phone=act.number.phone,
                phone_from=None,
                text=text,
            )
        )
        live = next(
            (a for a in self.model.values() if a.number is act.number and a.state in LIVE), None
        )
        if live is not None:
            self._touch(live)
        if live is not None and live.state in LIVE:
            assert result.activation_id == live.id
            live.state = "code"
            live.code = text
        else:
            assert result.activation_id is None

    @rule(activation=activations, status=st.sampled_from([1, 3, 6, 8, -1]))
    def set_status(self, activation: int, status: int) -> None:
        act = self.model.get(activation)
        if act is None:
            return
        self._touch(act)
        expected: str
        if status == 1:
            expected = "ACCESS_READY" if act.state == "waiting" else "BAD_STATUS"
        elif status == 3:
            expected = "ACCESS_RETRY_GET" if act.state in ("code", "retry") else "BAD_STATUS"
        elif status == 6:
            expected = (
                "ACCESS_ACTIVATION" if act.state in ("code", "retry", "finished") else "BAD_STATUS"
            )
        elif act.state == "cancelled":
            expected = "ACCESS_CANCEL"
        elif act.state != "waiting":
            expected = "BAD_STATUS"
        elif self.now < act.created + EARLY:
            expected = "EARLY_CANCEL_DENIED"
        else:
            expected = "ACCESS_CANCEL"
        try:
            answer = self.hub.call(
                lifecycle.set_status(
                    self.hub.rt,
                    customer=self.customers[act.customer],
                    activation_id=str(act.id),
                    status=str(status),
                )
            )
        except errors.ProtocolError as refusal:
            answer = refusal.word
        assert answer == expected, (act, status)
        if status == 3 and answer == "ACCESS_RETRY_GET":
            act.state = "retry"
        elif status == 6 and act.state in ("code", "retry"):
            self._resolve(act, finish=True)
        elif status in (8, -1) and answer == "ACCESS_CANCEL" and act.state == "waiting":
            self._resolve(act, finish=False)

    @rule(activation=activations)
    def get_status(self, activation: int) -> None:
        act = self.model.get(activation)
        if act is None:
            return
        self._touch(act)
        seen = self.hub.call(
            lifecycle.current(
                self.hub.rt, customer=self.customers[act.customer], activation_id=str(act.id)
            )
        )
        assert seen.state.value == act.state

    @rule(activation=activations)
    def other_customer_sees_nothing(self, activation: int) -> None:
        act = self.model.get(activation)
        if act is None:
            return
        with pytest.raises(errors.NoActivation):
            self.hub.call(
                lifecycle.current(
                    self.hub.rt,
                    customer=self.customers[1 - act.customer],
                    activation_id=str(act.id),
                )
            )

    @rule(seconds=st.sampled_from([1, 30, 119, 121, 600, 1201]))
    def advance_clock(self, seconds: int) -> None:
        self.hub.clock.advance(seconds)

    @rule(
        target=activations,
        customer=st.integers(0, 1),
        service=st.sampled_from(["tg", "wa"]),
        retry=st.booleans(),
    )
    def buy_then_finish_with_a_code(self, customer: int, service: str, retry: bool) -> int:
        """The common path in one step (buy, a code, optionally a retry and a second code,
        finish): from the single steps alone a run made about one capture."""
        activation = self._buy(customer, service)
        if activation in self.model:
            self.sms(activation, "Your code: 48213")
            if retry:
                self.set_status(activation, 3)
                self.sms(activation, "G-123456 is your code")
            self.set_status(activation, 6)
        return activation

    # Steps of fixed sizes almost never land exactly on an activation's boundary: a window one
    # second too long went unseen in five runs out of five. These three rules put the clock on a
    # boundary (a second before, on it, a second after) and at once do what that boundary
    # decides, each part checked against the model like any other step.

    @rule(
        target=activations,
        customer=st.integers(0, 1),
        service=st.sampled_from(["tg", "wa"]),
        offset=st.sampled_from([-1, 0, 1]),
    )
    def buy_then_cancel_as_the_early_cancel_window_ends(
        self, customer: int, service: str, offset: int
    ) -> int:
        activation = self._buy(customer, service)
        act = self.model.get(activation)
        if act is not None:
            self._move_clock_to(act.created + EARLY + offset)
            self.set_status(activation, 8)
        return activation

    @precondition(lambda self: bool(self._before_their_deadline()))
    @rule(
        data=st.data(),
        offset=st.sampled_from([-1, 0, 1]),
        probe=st.sampled_from(["status", "sms", "finish", "cancel"]),
    )
    def act_at_a_deadline(self, data: st.DataObject, offset: int, probe: str) -> None:
        act = data.draw(st.sampled_from(self._before_their_deadline()), label="activation")
        self._move_clock_to(act.created + TTL + offset)
        if probe == "status":
            self.get_status(act.id)
        elif probe == "sms":
            self.sms(act.id, "Your code: 48213")
        else:
            self.set_status(act.id, 6 if probe == "finish" else 8)

    @precondition(lambda self: bool(self._before_their_deadline()))
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 1]))
    def sweep_at_a_deadline(self, data: st.DataObject, offset: int) -> None:
        act = data.draw(st.sampled_from(self._before_their_deadline()), label="activation")
        self._move_clock_to(act.created + TTL + offset)
        self.sweep()

    def _before_their_deadline(self) -> list[Activation]:
        """Live activations whose deadline is more than a second away."""
        return [
            a for a in self.model.values() if a.state in LIVE and self.now < a.created + TTL - 1
        ]

    def _move_clock_to(self, instant: int) -> None:
        assert instant >= self.now, "the clock never goes back"
        self.hub.clock.advance(instant - self.now)

    @precondition(lambda self: any(a.state in LIVE for a in self.model.values()))
    @rule()
    def sweep(self) -> None:
        resolved = self.hub.call(lifecycle.sweep(self.hub.rt, batch=2))
        expected = 0
        for act in self.model.values():
            if act.state in LIVE and self.now >= act.created + TTL:
                self._touch(act)
                expected += 1
        assert resolved == expected

    # ---------------------------------------------------------------- invariants

    @invariant()
    def balances_match_the_model(self) -> None:
        if not self.customers:
            return
        for index, customer in enumerate(self.customers):
            assert self.hub.call(accounts.balance(self.hub.rt, customer)) == self.available[index]
        for name, seller in self.providers.items():
            paid = self.hub.call(accounts.provider_balance(self.hub.rt, seller.id))
            assert paid == self.payable[name]

    @invariant()
    def audit_is_clean(self) -> None:
        if not self.customers:
            return
        report = self.hub.audit()
        assert report.clean, report.problems
        assert report.totals["held"] == sum(self.held)


def test_ledger_and_lifecycle_follow_the_model(
    live_server: support.LiveServer,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    counter = iter(range(10**9))

    def fresh_database() -> str:
        if backend == "sqlite":
            template: Path = request.getfixturevalue("sqlite_template")
            folder = tmp_path / f"example{next(counter)}"
            folder.mkdir()
            return support.sqlite_copy(template, folder)
        url: str = request.getfixturevalue("pg_url")
        import asyncio

        asyncio.run(support.empty_pg(url))
        return url

    class OnThisBackend(LedgerMachine):
        def __init__(self) -> None:
            super().__init__(live_server, fresh_database)

    run_state_machine_as_test(
        OnThisBackend,
        settings=settings(
            max_examples=EXAMPLES if backend == "sqlite" else PG_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # Shrinking a failure of this machine can take many minutes; CI reports the
            # unshrunk sequence (still a reproducible example) and stays within budget.
            phases=[p for p in Phase if not (CI and p is Phase.shrink)],
        ),
    )
