"""Upstream providers: another sms-activate-compatible service OTPHub buys from and resells.

Placeholder signatures for the purchase and the outbox; built by the upstream work of
issue 9 (this whole module is replaced there).
"""

from __future__ import annotations

from typing import Any

from otphub.domain.supply import NumberRequest, RemoteNumber, RemoteProvider, SupplierFailure
from otphub.services.runtime import Runtime


async def get_number(rt: Runtime, provider: RemoteProvider, request: NumberRequest) -> RemoteNumber:
    """Buy a number at the upstream (getNumber with maxPrice = ``request.payout``)."""
    raise SupplierFailure("upstream purchases are not built yet")


async def deliver_status(rt: Runtime, provider: RemoteProvider, payload: dict[str, Any]) -> None:
    """Deliver one outbox message of kind ``upstream_status`` (setStatus at the upstream):
    returns when the upstream acknowledged it, raises ``SupplierFailure`` to retry later."""
    raise SupplierFailure("upstream setStatus is not built yet")
