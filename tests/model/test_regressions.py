"""Sequences that the model test (test_ledger_model.py) once found failing, kept as plain
tests so that they run every time, whatever Hypothesis happens to generate."""

from __future__ import annotations

from tests.support import Hub


def test_a_refused_set_status_after_the_deadline_keeps_the_expiry(hub: Hub) -> None:
    """Found 2026-11-26: setStatus 1 on an overdue waiting activation resolved the expiry,
    then answered BAD_STATUS by raising inside the transaction, which rolled the expiry
    back: the hold stayed open although the customer had been told the activation ended."""
    hub.stocked(count=1)
    key = hub.customer("1.00")
    activation_id, _ = hub.buy(key)
    hub.clock.advance(600)
    hub.clock.advance(600)
    assert hub.say(key, "setStatus", id=activation_id, status=1) == "BAD_STATUS"
    report = hub.audit()
    assert report.totals["held"] == 0
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"
