"""Activation states as SQL, derived from the enum (``domain/activation.py``): the CHECK
constraint, the partial indexes' predicates, the fast paths' predicates and the audit all
spell the states through here, so a state added to the enum reaches every one of them
(and ``tests/db/test_states.py`` then demands a migration for the live schema).

The states are written into the SQL as literals, in the enum's order. SQLite uses a
partial index only when the query repeats the index's predicate term for term; with bound
parameters (``state IN (?, ?, ?)``) it scans the whole table instead. So a predicate a
query shares with an index must come out of ``state_in`` with the same states, and
therefore the same text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from otphub.domain.activation import CODELESS_STATES, LIVE_STATES, State

# A state's value goes into SQL text: only plain lower-case words may.
_PLAIN = re.compile(r"[a-z_]+")


def values(states: Iterable[State]) -> tuple[str, ...]:
    """The states' values in the enum's order (a set has no order of its own)."""
    wanted = frozenset(states)
    ordered = tuple(state.value for state in State if state in wanted)
    if not ordered:
        raise ValueError("a state predicate needs at least one state")
    for value in ordered:
        if not _PLAIN.fullmatch(value):
            raise ValueError(f"state value {value!r} cannot be written into SQL")
    return ordered


def state_in(states: Iterable[State], column: str = "state") -> str:
    """``state IN ('waiting', 'code', 'retry')``; ``state = 'finished'`` for one state."""
    quoted = [f"'{value}'" for value in values(states)]
    if len(quoted) == 1:
        return f"{column} = {quoted[0]}"
    return f"{column} IN ({', '.join(quoted)})"


ANY = state_in(State)
LIVE = state_in(LIVE_STATES)
FINISHED = state_in({State.FINISHED})
CANCELLED = state_in({State.CANCELLED})
CODELESS = state_in(CODELESS_STATES)
