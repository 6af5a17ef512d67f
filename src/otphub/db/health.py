"""What an operator may see of the database: whether it answers, and its URL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import make_url

from otphub.db.engine import Conn


async def ping(conn: Conn) -> None:
    """One trivial statement: raises if the database does not answer."""
    await conn.execute(select(1))


def shown_url(url: str) -> str:
    """The database URL as it may be printed: any password masked."""
    return make_url(url).render_as_string(hide_password=True)
