"""What the customer's pages share: who the customer is, and plain words for states."""

from __future__ import annotations

from otphub.domain.activation import Activation, State
from otphub.http.console.web import Visit
from otphub.services.accounts import Customer

# The plain label of each state, as the activation page, the history and the page's
# script (which receives them in data attributes) show it.
STATE_LABELS: dict[str, str] = {
    State.WAITING.value: "Waiting for the SMS",
    State.CODE.value: "SMS received",
    State.RETRY.value: "Waiting for another SMS",
    State.FINISHED.value: "Finished",
    State.CANCELLED.value: "Cancelled",
    "expired": "Expired",
}


def me(visit: Visit) -> Customer:
    """The signed-in customer (``customer_page`` lets no one else in)."""
    assert visit.signed is not None and visit.signed.customer is not None
    return visit.signed.customer


def shown_state(act: Activation) -> str:
    """The state as the customer reads it: an activation cancelled at its deadline (no
    code came in time) is "expired", not cancelled by anyone."""
    if act.state is State.CANCELLED and act.ended_at is not None and act.ended_at >= act.expires_at:
        return "expired"
    return act.state.value


def state_label(act: Activation) -> str:
    return STATE_LABELS[shown_state(act)]


def sentence(message: str) -> str:
    """A service's message as a sentence: capital first letter, a full stop at the end."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
