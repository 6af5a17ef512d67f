"""The SMSHub protocol's country names (``domain/protocol_names.py``) with the operator's
aliases: ``otphub catalog alias add|list|remove``."""

from __future__ import annotations

from otphub.db import remote_stock
from otphub.domain import errors
from otphub.domain.protocol_names import alias_name, country_names, derived_name
from otphub.services.runtime import Runtime


async def names(rt: Runtime) -> dict[str, int]:
    """Every protocol name -> catalog country id (read at each poll: an alias the operator
    adds counts from the next poll on, in every process)."""
    async with rt.db.read() as conn:
        added = await remote_stock.aliases(conn)
    return country_names(
        ((c.id, c.name_en) for c in rt.catalog.countries.values()), operator_aliases=added
    )


def protocol_name(rt: Runtime, country_id: int) -> str:
    """How OTPHub names a country to an agent (GET_NUMBER): its derived English name."""
    return derived_name(rt.catalog.countries[country_id].name_en)


async def add_alias(rt: Runtime, *, name: str, country_id: int) -> str:
    try:
        clean = alias_name(name)
    except ValueError as refused:
        raise errors.InvalidInput(str(refused)) from None
    if country_id not in rt.catalog.countries:
        raise errors.InvalidInput(f"unknown country id {country_id}")
    async with rt.db.write() as conn:
        if not await remote_stock.add_alias(conn, name=clean, country_id=country_id):
            raise errors.InvalidInput(f"the alias {clean!r} exists already")
    return clean


async def list_aliases(rt: Runtime) -> dict[str, int]:
    async with rt.db.read() as conn:
        return await remote_stock.aliases(conn)


async def remove_alias(rt: Runtime, *, name: str) -> str:
    try:
        clean = alias_name(name)
    except ValueError as refused:
        raise errors.InvalidInput(str(refused)) from None
    async with rt.db.write() as conn:
        if not await remote_stock.remove_alias(conn, name=clean):
            raise errors.NotFound(f"no alias {clean!r}")
    return clean
