"""Prometheus metrics.

Counters live in each server process (with several workers, each scrape reaches one of
them; run one worker per node or sum over nodes' processes). The gauges are read from the
database at scrape time (``db/gauges.py``), so they are the same whichever process answers.
``/metrics`` itself answers only with ``OTPHUB_METRICS_TOKEN`` (see ``http/app.py``).
"""

from __future__ import annotations

import functools

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from otphub.db import gauges
from otphub.db.engine import Database

# The `_created` series (a start timestamp per label set) double the scrape for no use:
# Prometheus derives resets from the counters themselves.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "otphub_requests",
    "Customer-API requests by action and answer word.",
    ["action", "answer"],
    registry=REGISTRY,
)
SMS_PUSHES = Counter(
    "otphub_sms_pushes",
    "Supplier SMS pushes by outcome (matched, unmatched, repeat, refused).",
    ["outcome"],
    registry=REGISTRY,
)
PURCHASES = Counter("otphub_purchases", "Numbers sold.", registry=REGISTRY)
CAPTURES = Counter("otphub_captures", "Holds captured (finished).", registry=REGISTRY)
RELEASES = Counter("otphub_releases", "Holds released (cancelled).", registry=REGISTRY)
BACKGROUND_RUNS = Counter(
    "otphub_background_runs",
    "Runs of fleet-wide periodic jobs done by this process (one process per period does each).",
    ["job"],
    registry=REGISTRY,
)
OUTBOX = Counter(
    "otphub_outbox",
    "Outbox deliveries (to remote providers, to webhooks) by kind and outcome (delivered, "
    "retried, failed, dropped).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "otphub_rate_limited", "Requests answered 429, by reason.", ["reason"], registry=REGISTRY
)

OPEN_HOLDS = Gauge(
    "otphub_open_holds",
    "Holds neither captured nor released: one per live activation (otphub audit checks it).",
    registry=REGISTRY,
)
OPEN_HOLDS_AMOUNT = Gauge(
    "otphub_open_holds_amount_minor", "Sum of open holds, in minor units.", registry=REGISTRY
)
LIVE_ACTIVATIONS = Gauge("otphub_live_activations", "Activations not yet ended.", registry=REGISTRY)
FREE_NUMBERS = Gauge(
    "otphub_free_numbers", "Online numbers without a live activation.", registry=REGISTRY
)
SWEEPER_LAG = Gauge(
    "otphub_sweeper_lag_seconds",
    "How long the most overdue live activation has waited for the sweeper (0: none).",
    registry=REGISTRY,
)


async def refresh_gauges(db: Database, *, now: int) -> None:
    """Read the gauges for a scrape, in a worker thread on SQLite (``read_aside``): even
    bounded by what is live, counting 10,000 live activations and 100,000 free numbers
    takes milliseconds, during which the event loop would serve nothing else."""
    found = await db.read_aside(gauges.read)
    OPEN_HOLDS.set(found.open_holds)
    OPEN_HOLDS_AMOUNT.set(found.open_holds_amount)
    LIVE_ACTIVATIONS.set(found.live_activations)
    deadline = found.oldest_deadline
    SWEEPER_LAG.set(max(0, now - deadline) if deadline is not None else 0)
    FREE_NUMBERS.set(found.free_numbers)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


@functools.lru_cache(maxsize=4096)
def requests_of(action: str, answer: str) -> Counter:
    """``REQUESTS``' child for these labels, looked up once: ``labels()`` costs more than
    the increment. Both labels come from bounded sets (known actions, answer words)."""
    return REQUESTS.labels(action, answer)


_HEROSMS_REFUSAL = b'{"title":"'


def answer_label(body: bytes) -> str:
    """The answer word of a customer-API body, for a bounded label: ``STATUS_OK:123`` ->
    ``STATUS_OK``, JSON -> ``json``; a herosms refusal (``{"title":"NO_BALANCE",...}``) ->
    its word."""
    if body.startswith(_HEROSMS_REFUSAL):
        return body[len(_HEROSMS_REFUSAL) :].split(b'"', 1)[0][:32].decode(errors="replace")
    if body.startswith((b"{", b"[")):
        return "json"
    return body.split(b":", 1)[0][:32].decode(errors="replace")
