"""The operator dashboard: activations per time bucket, their success rate and time to the
SMS, the operator's revenue and the open holds, over the last hour (by minute) or the last
day (by hour). Read-only, from grouped statements over the window (db/dashboard.py)."""

from __future__ import annotations

from dataclasses import dataclass

from otphub.db import dashboard as db
from otphub.services.runtime import Runtime

# (bucket width in seconds, how many buckets)
WINDOWS: dict[str, tuple[int, int]] = {"hour": (60, 60), "day": (3600, 24)}


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int  # Unix seconds
    bought: int
    success_rate: float | None  # finished per ended activation bought in the bucket
    sms_seconds: float | None  # mean time from purchase to the SMS
    revenue: int  # the operator's margin gained (minor units)
    open_holds: int  # money held at the bucket's end


@dataclass(frozen=True, slots=True)
class Dashboard:
    window: str
    width: int
    buckets: list[Bucket]
    bought: int
    success_rate: float | None
    sms_seconds: float | None
    revenue: int
    open_holds: int  # now


async def dashboard(rt: Runtime, *, window: str = "hour") -> Dashboard:
    width, count = WINDOWS.get(window, WINDOWS["hour"])
    if window not in WINDOWS:
        window = "hour"
    now = rt.clock.now()
    end = (now // width + 1) * width  # the current bucket is the last one
    since = end - width * count
    async with rt.db.read() as conn:
        found = await db.activity(conn, since=since, width=width, count=count)
        activity = {b.index: b for b in found}
        money = {
            b.index: b
            for b in await db.money(
                conn, revenue_account=rt.accounts().revenue, since=since, width=width, count=count
            )
        }
        held = await db.held_now(conn)
        placed_later, resolved_later = await db.held_after(conn, since=end)
    empty_activity = db.ActivityBucket(0, 0, 0, 0, 0, 0)
    empty_money = db.MoneyBucket(0, 0, 0, 0)
    # Walk back from now: the holds open at a bucket's end are those open now, less those
    # placed since, plus those resolved since.
    open_at_end = held - placed_later + resolved_later
    buckets: list[Bucket] = []
    for index in reversed(range(count)):
        a = activity.get(index, empty_activity)
        m = money.get(index, empty_money)
        buckets.append(
            Bucket(
                start=since + index * width,
                bought=a.bought,
                success_rate=a.finished / a.ended if a.ended else None,
                sms_seconds=a.sms_seconds / a.with_sms if a.with_sms else None,
                revenue=m.revenue,
                open_holds=open_at_end,
            )
        )
        open_at_end = open_at_end - m.held + m.resolved
    buckets.reverse()
    finished = sum(a.finished for a in activity.values())
    ended = sum(a.ended for a in activity.values())
    with_sms = sum(a.with_sms for a in activity.values())
    return Dashboard(
        window=window,
        width=width,
        buckets=buckets,
        bought=sum(a.bought for a in activity.values()),
        success_rate=finished / ended if ended else None,
        sms_seconds=sum(a.sms_seconds for a in activity.values()) / with_sms if with_sms else None,
        revenue=sum(m.revenue for m in money.values()),
        open_holds=held,
    )
