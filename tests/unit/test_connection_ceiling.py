"""OTPHUB_MAX_CONNECTIONS against the process's open-file limit: raised to fit when the
hard limit allows, the ceiling lowered (never EMFILE) when it does not."""

from __future__ import annotations

import resource

import pytest

from otphub.http import server


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    state = {"soft": 1024, "hard": 524288}

    def getrlimit(_which: int) -> tuple[int, int]:
        return state["soft"], state["hard"]

    def setrlimit(_which: int, value: tuple[int, int]) -> None:
        if value[0] > state["hard"]:
            raise ValueError("not allowed")
        state["soft"] = value[0]

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return state


def test_the_soft_limit_is_raised_to_fit_the_connections(limits: dict[str, int]) -> None:
    assert server.connection_ceiling(10_000) == 10_000
    assert limits["soft"] == 10_000 + server.FILES_BESIDE_CONNECTIONS


def test_a_low_hard_limit_lowers_the_ceiling(limits: dict[str, int]) -> None:
    limits["hard"] = 4096
    assert server.connection_ceiling(10_000) == 4096 - server.FILES_BESIDE_CONNECTIONS
    assert limits["soft"] == 4096


def test_enough_already_or_no_limit_changes_nothing(limits: dict[str, int]) -> None:
    assert server.connection_ceiling(100) == 100
    assert limits["soft"] == 1024
    assert server.connection_ceiling(0) == 0
