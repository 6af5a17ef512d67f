"""What the request limits read about a customer: how many activations are live now.

Its own small module so that the HTTP layer's limiter calls a use case, never the
database directly.
"""

from __future__ import annotations

from otphub.db import activations
from otphub.services.runtime import Runtime


async def live_activation_count(rt: Runtime, *, customer_id: int) -> int:
    async with rt.db.read() as conn:
        return await activations.count_live(conn, customer_id)
