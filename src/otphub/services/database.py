"""What the entry points may know about the database itself (not its contents)."""

from __future__ import annotations

from otphub.db import health
from otphub.services.runtime import Runtime


async def ready(rt: Runtime) -> bool:
    """Whether the database answers (readiness): a failure is an answer, not an error."""
    try:
        async with rt.db.read() as conn:
            await health.ping(conn)
    except Exception:
        return False
    return True


def shown_url(url: str) -> str:
    """The database URL as it may be printed: any password masked."""
    return health.shown_url(url)
