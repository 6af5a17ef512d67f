"""``/admin``: the dashboard, five charts over the last hour (by minute) or day (by hour)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup
from starlette.responses import Response

from otphub.http.console.admin.charts import bars
from otphub.http.console.admin.common import query
from otphub.http.console.web import Visit, operator_page, render
from otphub.services import dashboard as dashboard_service


@dataclass(frozen=True, slots=True)
class Chart:
    caption: str
    summary: str  # the window's figure, said in words beside the chart
    svg: Markup
    rows: list[tuple[str, str]]  # (bucket, value) for the table under the chart


@operator_page
async def dashboard(visit: Visit) -> Response:
    rt = visit.rt
    board = await dashboard_service.dashboard(rt, window=query(visit, "window") or "hour")
    fmt_time = "%H:%M" if board.width < 3600 else "%d %H:00"
    labels = [datetime.fromtimestamp(b.start, rt.tz).strftime(fmt_time) for b in board.buckets]
    per = "minute" if board.width == 60 else "hour"

    def chart(
        caption: str, summary: str, values: list[float | None], fmt: Callable[[float], str]
    ) -> Chart:
        table = [
            (label, "-" if v is None else fmt(v)) for label, v in zip(labels, values, strict=True)
        ]
        return Chart(caption, summary, bars(values, labels=labels, title=caption, fmt=fmt), table)

    def percent(v: float) -> str:
        return f"{v * 100:.0f}%"

    def seconds(v: float) -> str:
        return f"{v:.0f} s"

    def cash(v: float) -> str:
        return rt.money.format(round(v))

    def count(v: float) -> str:
        return f"{v:.0f}"

    b = board.buckets
    charts = [
        chart(
            f"Activations per {per}",
            f"{board.bought} bought",
            [float(x.bought) for x in b],
            count,
        ),
        chart(
            "Success rate",
            "no activation ended"
            if board.success_rate is None
            else f"{percent(board.success_rate)} finished",
            [x.success_rate for x in b],
            percent,
        ),
        chart(
            "Time to SMS",
            "no SMS yet"
            if board.sms_seconds is None
            else f"{seconds(board.sms_seconds)} on average",
            [x.sms_seconds for x in b],
            seconds,
        ),
        chart(
            "Revenue",
            f"{cash(board.revenue)} {rt.settings.money.code}",
            [float(x.revenue) for x in b],
            cash,
        ),
        chart(
            "Open holds",
            f"{cash(board.open_holds)} {rt.settings.money.code} now",
            [float(x.open_holds) for x in b],
            cash,
        ),
    ]
    return render(visit, "admin/dashboard.html", charts=charts, window=board.window)
