"""What a customer bought: getHistory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from otphub.db import activations, reports
from otphub.db.activations import Activation
from otphub.domain import errors
from otphub.domain.activation import LIVE_STATES, State
from otphub.domain.numbers import parse_whole
from otphub.services import lifecycle
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

MAX_SPAN = 30 * 24 * 3600
MAX_LIMIT = 100
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class HistoryLine:
    activation: Activation
    texts: list[str]
    refunded: bool = False  # finished, then refunded by the operator: the money went back

    @property
    def status(self) -> str:
        """getHistory's status: "6" paid for, "8" not paid for (cancelled, or refunded)."""
        return "6" if self.activation.state is State.FINISHED and not self.refunded else "8"


def _whole(raw: str | None, default: int, *, error: type[errors.ProtocolError]) -> int:
    if raw is None:
        return default
    value = parse_whole(raw)
    if value is None:
        raise error()
    return value


async def history(
    rt: Runtime,
    *,
    customer: Customer,
    start: str | None,
    end: str | None,
    offset: str | None,
    limit: str | None,
) -> list[HistoryLine]:
    now = rt.clock.now()
    until = _whole(end, now, error=errors.WrongDate)
    since = _whole(start, until - MAX_SPAN, error=errors.WrongDate)
    if since < 0 or until < since or until - since > MAX_SPAN:
        raise errors.WrongDate()
    skip = max(_whole(offset, 0, error=errors.WrongDate), 0)
    take = min(max(_whole(limit, DEFAULT_LIMIT, error=errors.WrongDate), 1), MAX_LIMIT)
    async with rt.db.read() as conn:
        ended = await activations.ended_of_customer(
            conn, customer_id=customer.id, start=since, end=until, offset=skip, limit=take
        )
        texts = await activations.sms_texts(conn, [a.id for a in ended])
        refunded = await reports.refunded_among(conn, [a.id for a in ended])
    return [HistoryLine(a, [t for t, _ in texts[a.id]], a.id in refunded) for a in ended]


# The web console's history: every activation of the customer (live ones too), filtered.
BROWSE_PAGE = 50
MAX_BROWSE_OFFSET = 10_000
EXPORT_ROWS = 10_000  # a CSV holds at most this many rows, newest first
EXPORT_BATCH = 500
STATE_FILTERS: dict[str, frozenset[State]] = {
    "live": LIVE_STATES,
    "finished": frozenset({State.FINISHED}),
    "cancelled": frozenset({State.CANCELLED}),
}


@dataclass(frozen=True, slots=True)
class Filters:
    """What the customer narrows the history to; ``None`` for no narrowing. ``since`` and
    ``until`` are unix times, [since, until)."""

    service: str | None = None
    state: str | None = None
    since: int | None = None
    until: int | None = None


def _checked(rt: Runtime, filters: Filters) -> frozenset[State] | None:
    if filters.service is not None and filters.service not in rt.catalog.services:
        raise errors.BadService()
    if filters.state is not None and filters.state not in STATE_FILTERS:
        raise errors.BadStatus()
    return None if filters.state is None else STATE_FILTERS[filters.state]


async def browse(
    rt: Runtime, *, customer: Customer, filters: Filters, page: int
) -> tuple[list[HistoryLine], bool]:
    """A page of the customer's activations (``BROWSE_PAGE`` of them, newest first) and
    whether there are more. Overdue activations are resolved first: no page shows a live
    activation past its deadline."""
    wanted = _checked(rt, filters)
    await lifecycle.resolve_overdue_of(rt, customer=customer)
    offset = min(max(page, 0) * BROWSE_PAGE, MAX_BROWSE_OFFSET)
    async with rt.db.read() as conn:
        found = await activations.browse_of_customer(
            conn,
            customer_id=customer.id,
            service=filters.service,
            states_in=wanted,
            since=filters.since,
            until=filters.until,
            offset=offset,
            limit=BROWSE_PAGE + 1,
        )
        shown = found[:BROWSE_PAGE]
        refunded = await reports.refunded_among(conn, [a.id for a in shown])
    # Past MAX_BROWSE_OFFSET rows, narrower dates are the way (or the CSV): no next page.
    more = len(found) > BROWSE_PAGE and offset + BROWSE_PAGE <= MAX_BROWSE_OFFSET
    return [HistoryLine(a, [], a.id in refunded) for a in shown], more


async def export(
    rt: Runtime, *, customer: Customer, filters: Filters
) -> AsyncIterator[list[HistoryLine]]:
    """The filtered history in batches, newest first, at most ``EXPORT_ROWS`` rows: each
    batch its own short read (a long download holds no transaction open)."""
    wanted = _checked(rt, filters)
    await lifecycle.resolve_overdue_of(rt, customer=customer)
    before: tuple[int, int] | None = None
    left = EXPORT_ROWS
    while left > 0:
        async with rt.db.read() as conn:
            batch = await activations.browse_of_customer(
                conn,
                customer_id=customer.id,
                service=filters.service,
                states_in=wanted,
                since=filters.since,
                until=filters.until,
                limit=min(EXPORT_BATCH, left),
                before=before,
            )
            refunded = await reports.refunded_among(conn, [a.id for a in batch])
        if not batch:
            return
        yield [HistoryLine(a, [], a.id in refunded) for a in batch]
        left -= len(batch)
        before = (batch[-1].created_at, batch[-1].id)
