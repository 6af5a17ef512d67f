"""What API v1 reads of a customer's activations: pages of them, and an activation's SMS.
(The protocol's reads are in ``lifecycle`` and ``history``.)"""

from __future__ import annotations

from typing import Literal

from otphub.db import activations
from otphub.db.activations import Activation, StoredSms
from otphub.domain.activation import ENDED_STATES, LIVE_STATES, State
from otphub.services import lifecycle
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

StateFilter = Literal["live", "ended", "all"]
MAX_PAGE = 100

_STATES: dict[StateFilter, frozenset[State]] = {
    "live": LIVE_STATES,
    "ended": ENDED_STATES,
    "all": frozenset(State),
}


async def page(
    rt: Runtime, *, customer: Customer, state: StateFilter, offset: int, limit: int
) -> list[Activation]:
    """The customer's activations in ``state``, newest first, after resolving any whose
    deadline has passed (no page shows "waiting" past the deadline)."""
    await lifecycle.resolve_overdue_of(rt, customer=customer)
    async with rt.db.read() as conn:
        return await activations.page_of_customer(
            conn,
            customer_id=customer.id,
            states_in=_STATES[state],
            offset=max(offset, 0),
            limit=min(max(limit, 1), MAX_PAGE),
        )


async def sms_of(rt: Runtime, *, customer: Customer, activation_id: int) -> list[StoredSms]:
    """Every SMS of the customer's activation, oldest first; ``NO_ACTIVATION`` for another
    customer's, as for a missing one."""
    await lifecycle.current(rt, customer=customer, activation_id=str(activation_id))
    return await activations.sms_of(rt.db, activation_id=activation_id)
