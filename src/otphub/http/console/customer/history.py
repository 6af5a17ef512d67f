"""``/history``: every activation of the customer, filtered by service, state and dates,
a page at a time; ``/history.csv``: the same filters as a CSV download (at most
``history.EXPORT_ROWS`` rows, newest first)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse

from otphub.domain import errors
from otphub.domain.activation import Activation
from otphub.http.console.customer.common import STATE_LABELS, me, shown_state
from otphub.http.console.web import Visit, customer_page, finish, render
from otphub.http.console.web import refused as refused_page
from otphub.services import history
from otphub.services.runtime import Runtime

CSV_HEADER = ["id", "service", "country", "phone", "price", "state", "code", "created", "finished"]
STATE_CHOICES = [
    ("", "Any"),
    ("live", "Live"),
    ("finished", "Finished"),
    ("cancelled", "Cancelled"),
]


class BadFilter(Exception):
    """A filter the customer typed that cannot be read; the message says how to write it."""


def _day(rt: Runtime, raw: str, name: str) -> int | None:
    """Midnight of a ``YYYY-MM-DD`` day in the deployment's time zone (unix time)."""
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")
        return int(day.replace(tzinfo=rt.tz).timestamp())
    except (ValueError, OverflowError, OSError):
        raise BadFilter(f"Write the {name} date as YYYY-MM-DD, e.g. 2026-11-30.") from None


def _filters(visit: Visit) -> tuple[history.Filters, dict[str, str]]:
    """The filters of the query string, and the same as written (to fill the form in and
    to build the links)."""
    query = visit.request.query_params
    written = {
        name: query.get(name, "").strip()[:32] for name in ("service", "state", "from", "to")
    }
    since = _day(visit.rt, written["from"], "from")
    last_day = _day(visit.rt, written["to"], "to")
    until = None
    if last_day is not None:
        # The whole last day counts (the next midnight, whatever the day's length).
        try:
            next_day = datetime.fromtimestamp(last_day, visit.rt.tz) + timedelta(days=1)
        except (OverflowError, ValueError, OSError):
            raise BadFilter("The to date is out of range.") from None
        until = int(next_day.replace(hour=0, minute=0, second=0).timestamp())
    if since is not None and until is not None and until <= since:
        raise BadFilter("The from date must come before the to date.")
    filters = history.Filters(
        service=written["service"] or None,
        state=written["state"] or None,
        since=since,
        until=until,
    )
    return filters, written


def _query(written: dict[str, str], **more: str) -> str:
    values = {k: v for k, v in {**written, **more}.items() if v}
    return urlencode(values)


@customer_page
async def history_page(visit: Visit) -> Response:
    raw_page = visit.request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 6 else 1
    page = max(page, 1)
    error = None
    lines: list[history.HistoryLine] = []
    more = False
    written = {name: "" for name in ("service", "state", "from", "to")}
    try:
        filters, written = _filters(visit)
        lines, more = await history.browse(
            visit.rt, customer=me(visit), filters=filters, page=page - 1
        )
    except BadFilter as bad:
        error = str(bad)
    except errors.ProtocolError as refused:
        error = errors.explain(refused.word)
    services = sorted(visit.rt.catalog.services.items(), key=lambda item: item[1].lower())
    return render(
        visit,
        "customer/history.html",
        status_code=200 if error is None else 400,
        lines=lines,
        page=page,
        more=more,
        written=written,
        services=services,
        states=STATE_CHOICES,
        labels=STATE_LABELS,
        shown_state=shown_state,
        csv_query=_query(written),
        newer_query=_query(written, page=str(page - 1) if page > 2 else ""),
        older_query=_query(written, page=str(page + 1)),
        error=error,
        export_rows=history.EXPORT_ROWS,
    )


def _cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula is kept as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


class _Stamps:
    """``rt.timestamp`` for thousands of rows: each minute formatted once (every zone's
    offset is a whole number of minutes today, so the seconds are the unix time's)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._minutes: dict[int, str] = {}
        self.money = rt.money.format  # built once, not per row

    def __call__(self, unix: int) -> str:
        minute = unix // 60
        prefix = self._minutes.get(minute)
        if prefix is None:
            if len(self._minutes) > 10_000:
                self._minutes.clear()
            prefix = self._minutes[minute] = self._rt.timestamp(minute * 60)[:-2]
        return f"{prefix}{unix % 60:02d}"


def _row(stamp: _Stamps, line: history.HistoryLine) -> list[str]:
    act: Activation = line.activation
    state = "refunded" if line.refunded else shown_state(act)
    return [
        str(act.id),
        act.service,
        str(act.country_id),
        act.phone,
        stamp.money(act.price),
        state,
        _cell(act.code or ""),
        stamp(act.created_at),
        stamp(act.ended_at) if act.ended_at is not None else "",
    ]


@customer_page
async def history_csv(visit: Visit) -> Response:
    try:
        filters, _written = _filters(visit)
    except BadFilter as bad:
        return refused_page(visit, str(bad))
    customer = me(visit)
    rt = visit.rt
    batches = history.export(rt, customer=customer, filters=filters)
    # The first batch is read before the answer starts: a refusal (an unknown service)
    # is still an error page, not a broken download.
    try:
        first = await anext(batches, None)
    except errors.ProtocolError as refused:
        return refused_page(visit, errors.explain(refused.word))

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        stamp = _Stamps(rt)
        batch = first
        while batch is not None:
            writer.writerows(_row(stamp, line) for line in batch)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            batch = await anext(batches, None)
        if buffer.tell():
            yield buffer.getvalue()  # the header alone: nothing matched

    response = StreamingResponse(lines(), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="otphub-history.csv"'
    return finish(visit, response)
