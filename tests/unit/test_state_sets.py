"""The sets of activation states that the SQL is derived from (db/states.py) agree with the
state machine that moves activations between them."""

from __future__ import annotations

import pytest

from otphub.db import states
from otphub.domain import errors
from otphub.domain.activation import (
    CODELESS_STATES,
    ENDED_STATES,
    HAS_CODE_STATES,
    LIVE_STATES,
    Outcome,
    Snapshot,
    State,
    decide,
    expiry_outcome,
)


def test_every_state_is_live_or_ended() -> None:
    assert frozenset(State) == LIVE_STATES | ENDED_STATES
    assert not LIVE_STATES & ENDED_STATES
    assert HAS_CODE_STATES <= LIVE_STATES


@pytest.mark.parametrize("state", list(State))
def test_only_an_activation_with_a_code_is_finished(state: State) -> None:
    """Why ``finished`` is not among the states that may lack a code (the CHECK
    ``code_kept``): every way to finish starts from a state with a code."""
    snapshot = Snapshot(state=state, created_at=0, expires_at=100)
    try:
        finishes = decide(snapshot, 6, now=50, early_cancel=0) is Outcome.FINISH
    except errors.ProtocolError:
        finishes = False
    at_deadline = state in LIVE_STATES and expiry_outcome(state) is Outcome.FINISH
    assert (finishes or at_deadline) == (state in HAS_CODE_STATES)
    assert (state in CODELESS_STATES) == (state not in HAS_CODE_STATES | {State.FINISHED})


def test_state_predicates_follow_the_enum_order() -> None:
    assert states.state_in(LIVE_STATES) == "state IN ('waiting', 'code', 'retry')"
    assert states.state_in({State.FINISHED}, "a.state") == "a.state = 'finished'"
    assert "state IN (" + ", ".join(f"'{s.value}'" for s in State) + ")" == states.ANY
    with pytest.raises(ValueError, match="at least one state"):
        states.state_in(())
