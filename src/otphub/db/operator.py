"""The operator's changes to stock: offers and numbers taken out of sale and put back, and
numbers removed. Each is one conditional statement, so that it cannot race a purchase into
a state the rules forbid (a number removed while a live activation uses it)."""

from __future__ import annotations

from sqlalchemy import delete, exists, false, select, update

from otphub.db.activations import LIVE
from otphub.db.engine import Conn
from otphub.db.schema import activations, numbers, offers, providers


async def set_offer_enabled(conn: Conn, offer_id: int, *, enabled: bool) -> bool:
    """``False`` when there is no such offer."""
    result = await conn.execute(
        update(offers).where(offers.c.id == offer_id).values(enabled=enabled)
    )
    return result.rowcount == 1


async def set_provider_enabled(conn: Conn, provider_id: int, *, enabled: bool) -> bool:
    """``False`` when there is no such provider."""
    result = await conn.execute(
        update(providers).where(providers.c.id == provider_id).values(enabled=enabled)
    )
    return result.rowcount == 1


async def set_number_online(conn: Conn, number_id: int, *, online: bool) -> bool:
    """``False`` when there is no such number, or it is in a live activation: the
    operator's switches never touch a number a customer holds. One statement, so a
    purchase claiming the number meanwhile makes the switch fail, never the purchase."""
    result = await conn.execute(
        update(numbers)
        .where(numbers.c.id == number_id, numbers.c.in_use == false())
        .values(online=online)
    )
    return result.rowcount == 1


async def remove_number(conn: Conn, number_id: int) -> bool:
    """Delete a number that was never in an activation: one statement, so a purchase that
    claims it meanwhile makes it fail (``False``) rather than leave an activation without
    its number. Activations keep their number forever (history, the finished-for-a-service
    rule), so a number that was ever sold can only be taken offline."""
    result = await conn.execute(
        delete(numbers).where(
            numbers.c.id == number_id,
            # On PostgreSQL a claim that locked the row first makes this re-read the row as
            # the claim left it (busy), so the removal stops here, not at the foreign key.
            numbers.c.in_use == false(),
            ~exists(select(activations.c.id).where(activations.c.number_id == numbers.c.id)),
        )
    )
    return result.rowcount == 1


async def activations_on_number(conn: Conn, number_id: int) -> tuple[int, int | None]:
    """How many activations a number had, and the id of its live one, if any."""
    rows = (
        await conn.execute(
            select(activations.c.id, activations.c.state).where(
                activations.c.number_id == number_id
            )
        )
    ).all()
    live = next((int(r.id) for r in rows if r.state in LIVE), None)
    return len(rows), live
