import pytest

from otphub.domain import errors
from otphub.domain.activation import (
    ANSWERS,
    Outcome,
    Snapshot,
    State,
    decide,
    expiry_outcome,
    parse_status,
    status_answer,
)

CREATED = 1_000
EARLY = 120
LATER = CREATED + EARLY  # first second a cancel is allowed


def snap(state: State) -> Snapshot:
    return Snapshot(state=state, created_at=CREATED, expires_at=CREATED + 1200)


# (state, status) -> outcome, or the error it raises, after the early-cancel window
TABLE: dict[tuple[State, int], Outcome | type[errors.OTPHubError]] = {
    (State.WAITING, 1): Outcome.READY,
    (State.WAITING, 3): errors.BadStatus,
    (State.WAITING, 6): errors.BadStatus,
    (State.WAITING, 8): Outcome.CANCEL,
    (State.WAITING, -1): Outcome.CANCEL,
    (State.CODE, 1): errors.BadStatus,
    (State.CODE, 3): Outcome.RETRY,
    (State.CODE, 6): Outcome.FINISH,
    (State.CODE, 8): errors.BadStatus,
    (State.RETRY, 3): Outcome.RETRY,
    (State.RETRY, 6): Outcome.FINISH,
    (State.RETRY, 8): errors.BadStatus,
    (State.FINISHED, 6): Outcome.ALREADY_FINISHED,
    (State.FINISHED, 8): errors.BadStatus,
    (State.FINISHED, 3): errors.BadStatus,
    (State.FINISHED, 1): errors.BadStatus,
    (State.CANCELLED, 8): Outcome.ALREADY_CANCELLED,
    (State.CANCELLED, -1): Outcome.ALREADY_CANCELLED,
    (State.CANCELLED, 6): errors.BadStatus,
    (State.CANCELLED, 3): errors.BadStatus,
    (State.CANCELLED, 1): errors.BadStatus,
}


@pytest.mark.parametrize(("state", "status"), list(TABLE))
def test_set_status_table(state: State, status: int) -> None:
    expected = TABLE[(state, status)]
    if isinstance(expected, Outcome):
        assert decide(snap(state), status, now=LATER, early_cancel=EARLY) is expected
    else:
        with pytest.raises(expected):
            decide(snap(state), status, now=LATER, early_cancel=EARLY)


def test_early_cancel_window() -> None:
    with pytest.raises(errors.EarlyCancelDenied):
        decide(snap(State.WAITING), 8, now=LATER - 1, early_cancel=EARLY)
    assert decide(snap(State.WAITING), 8, now=LATER, early_cancel=EARLY) is Outcome.CANCEL
    assert decide(snap(State.WAITING), 8, now=CREATED, early_cancel=0) is Outcome.CANCEL


def test_repeats_answer_the_same_word() -> None:
    assert ANSWERS[Outcome.ALREADY_FINISHED] == ANSWERS[Outcome.FINISH] == "ACCESS_ACTIVATION"
    assert ANSWERS[Outcome.ALREADY_CANCELLED] == ANSWERS[Outcome.CANCEL] == "ACCESS_CANCEL"


@pytest.mark.parametrize("raw", [None, "", "5", "abc", "0", "2", "9", "6.0"])
def test_unknown_status_values(raw: str | None) -> None:
    with pytest.raises(errors.BadStatus):
        parse_status(raw)


def test_expiry_captures_with_a_code_and_releases_without() -> None:
    assert expiry_outcome(State.WAITING) is Outcome.CANCEL
    assert expiry_outcome(State.CODE) is Outcome.FINISH
    assert expiry_outcome(State.RETRY) is Outcome.FINISH


def test_overdue_only_while_live() -> None:
    live = snap(State.CODE)
    assert not live.is_overdue(CREATED + 1199)
    assert live.is_overdue(CREATED + 1200)
    assert not snap(State.FINISHED).is_overdue(CREATED + 5000)


def test_status_answers() -> None:
    assert status_answer(State.WAITING, None) == "STATUS_WAIT_CODE"
    assert status_answer(State.CODE, "123") == "STATUS_OK:123"
    assert status_answer(State.RETRY, "123") == "STATUS_WAIT_RETRY:123"
    assert status_answer(State.FINISHED, "123") == "STATUS_CANCEL"
    assert status_answer(State.CANCELLED, None) == "STATUS_CANCEL"
