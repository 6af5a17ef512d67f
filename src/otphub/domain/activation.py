"""The activation state machine of the sms-activate protocol.

Pure decisions: given what is stored about an activation and what the customer asks,
say what happens. The storage layer then applies the decision with a compare-and-set
statement, so two requests racing on one activation can never both win.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from otphub.domain import errors
from otphub.domain.numbers import parse_whole


class State(enum.StrEnum):
    WAITING = "waiting"
    CODE = "code"  # a code was received
    RETRY = "retry"  # the customer asked for another SMS after a code
    FINISHED = "finished"
    CANCELLED = "cancelled"


# Every other copy of a state name (the CHECK constraint, the partial indexes, the SQL of
# the fast paths, the audit) is derived from the enum and these sets: see db/states.py.
LIVE_STATES: frozenset[State] = frozenset({State.WAITING, State.CODE, State.RETRY})
HAS_CODE_STATES: frozenset[State] = frozenset({State.CODE, State.RETRY})
ENDED_STATES: frozenset[State] = frozenset(State) - LIVE_STATES
# Only an activation with a code can be finished (``decide``), and a code once received is
# kept: the states that may have none.
CODELESS_STATES: frozenset[State] = frozenset(State) - HAS_CODE_STATES - {State.FINISHED}


class Outcome(enum.Enum):
    """What a setStatus request does."""

    READY = "ready"  # status 1: no state change
    RETRY = "retry"  # status 3: code/retry -> retry
    FINISH = "finish"  # status 6: capture the hold
    CANCEL = "cancel"  # status 8/-1: release the hold
    ALREADY_FINISHED = "already_finished"  # repeat of 6: same answer, no money
    ALREADY_CANCELLED = "already_cancelled"  # repeat of 8: same answer, no money


ANSWERS: dict[Outcome, str] = {
    Outcome.READY: "ACCESS_READY",
    Outcome.RETRY: "ACCESS_RETRY_GET",
    Outcome.FINISH: "ACCESS_ACTIVATION",
    Outcome.ALREADY_FINISHED: "ACCESS_ACTIVATION",
    Outcome.CANCEL: "ACCESS_CANCEL",
    Outcome.ALREADY_CANCELLED: "ACCESS_CANCEL",
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a decision needs to know about one activation."""

    state: State
    created_at: int
    expires_at: int

    def is_overdue(self, now: int) -> bool:
        return self.state in LIVE_STATES and now >= self.expires_at


class Activation(NamedTuple):
    """One activation as stored (db.activations reads it). A named tuple rather than a
    frozen dataclass: as immutable,
    and built from a row several times faster (a frozen dataclass sets each of its 17
    fields through ``object.__setattr__``), which counts on every status poll."""

    id: int
    customer_id: int
    provider_id: int
    number_id: int
    service: str
    country_id: int
    operator: str
    phone: str
    price: int
    payout: int
    state: State
    code: str | None
    sms_text: str | None
    sms_at: int | None
    created_at: int
    expires_at: int
    ended_at: int | None
    # The agent's or upstream's id of the activation; None for local inventory.
    remote_id: str | None

    @property
    def snapshot(self) -> Snapshot:
        return Snapshot(state=self.state, created_at=self.created_at, expires_at=self.expires_at)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Activation:
        """From the fields' values in order (a row of ``db.activations.ACTIVATION_COLUMNS``,
        read by position: works for raw driver tuples), the state as stored."""
        values = list(row)
        if len(values) != len(cls._fields):
            raise ValueError(f"an activation row has {len(cls._fields)} columns, not {len(values)}")
        values[_STATE] = _STATES[values[_STATE]]
        return cls._make(values)


_STATE = Activation._fields.index("state")
_STATES = {state.value: state for state in State}


def parse_status(raw: str | None) -> int:
    """The ``status`` parameter of setStatus; anything unknown is ``BAD_STATUS``."""
    value = parse_whole(raw)
    if value not in (1, 3, 6, 8, -1):
        raise errors.BadStatus()
    return value


def decide(snapshot: Snapshot, status: int, *, now: int, early_cancel: int) -> Outcome:
    """Decide what ``setStatus(status)`` does to an activation that is not overdue."""
    state = snapshot.state
    if status == 1:
        if state is State.WAITING:
            return Outcome.READY
        raise errors.BadStatus()
    if status == 3:
        if state in HAS_CODE_STATES:
            return Outcome.RETRY
        raise errors.BadStatus()
    if status == 6:
        if state in HAS_CODE_STATES:
            return Outcome.FINISH
        if state is State.FINISHED:
            return Outcome.ALREADY_FINISHED
        raise errors.BadStatus()
    # 8 or -1: cancel
    if state is State.CANCELLED:
        return Outcome.ALREADY_CANCELLED
    if state is not State.WAITING:
        # A code was delivered (or the activation is finished): the customer must finish.
        raise errors.BadStatus()
    if now < snapshot.created_at + early_cancel:
        raise errors.EarlyCancelDenied()
    return Outcome.CANCEL


def expiry_outcome(state: State) -> Outcome:
    """At its deadline an activation with a code is finished, one without is cancelled."""
    return Outcome.FINISH if state in HAS_CODE_STATES else Outcome.CANCEL


def status_answer(state: State, code: str | None) -> str:
    """The getStatus answer for a state (the activation is already resolved if overdue)."""
    if state is State.WAITING:
        return "STATUS_WAIT_CODE"
    if state is State.CODE:
        return f"STATUS_OK:{code}"
    if state is State.RETRY:
        return f"STATUS_WAIT_RETRY:{code}"
    return "STATUS_CANCEL"
