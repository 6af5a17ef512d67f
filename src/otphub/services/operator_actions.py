"""The record of every change an operator makes, from the console or the shell: who, what,
on what, and when. Each entry is written in the transaction of its change (``record``), so a
change is never kept without its entry, nor an entry without its change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otphub.db import logins as db
from otphub.db.engine import Conn
from otphub.services.runtime import Runtime

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes something: an operator of the console (by id and email), or the shell."""

    operator_id: int | None
    name: str


SHELL = Actor(None, "shell")


async def record(
    rt: Runtime, conn: Conn, actor: Actor, action: str, subject: str, **detail: Any
) -> None:
    """``action``: a short verb phrase (``customer.top_up``); ``subject``: what it was done
    to (``customer 12``); ``detail``: the values, as JSON."""
    await db.record_action(
        conn,
        operator_id=actor.operator_id,
        actor=actor.name,
        action=action,
        subject=subject,
        detail=detail,
        now=rt.clock.now(),
    )


async def recent(
    rt: Runtime, *, limit: int = 50, before_id: int | None = None, actor: str | None = None
) -> list[db.ActionRow]:
    async with rt.db.read() as conn:
        return await db.actions(
            conn, limit=max(1, min(limit, MAX_PAGE)), before_id=before_id, actor=actor
        )
