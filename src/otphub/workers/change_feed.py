"""The change feed's reader: wakes this process's waiting requests (long-polls, event
streams) when another process of the deployment changes an activation. One per server
process, only while the app runs: the CLI never opens it."""

from __future__ import annotations

from otphub.services import changes
from otphub.services.runtime import Runtime


async def run_change_feed(rt: Runtime) -> None:
    await changes.follow(rt)
