"""The operator's review pages: the audit's status (and running it), SMS that reached no
activation, and the record of changes (who changed what, when)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.http.console.admin.common import actor, optional_int, query
from otphub.http.console.web import Visit, operator_page, redirect, render
from otphub.services import audit as audit_service
from otphub.services import operator_actions, reports

PAGE = 50
# The details of a change that are amounts of money (minor units): shown as 12.50.
MONEY_KEYS = frozenset({"amount", "delta", "price", "payout", "markup_amount", "balance"})


@operator_page
async def audit(visit: Visit) -> Response:
    """The last recorded run; "Run the audit now" (a POST) makes a new one. A run
    recomputes every balance from the journal: too slow to repeat at each visit."""
    if visit.request.method == "POST":
        run = await audit_service.run_and_record(visit.rt, by=actor(visit))
        said = "clean" if run.report.clean else f"{len(run.report.problems)} problem(s) found"
        return redirect(visit, "/admin/audit", flash=f"Audit run in {run.took_ms} ms: {said}.")
    return render(visit, "admin/audit.html", run=await audit_service.last_run(visit.rt))


@operator_page
async def unmatched_sms(visit: Visit) -> Response:
    provider_id = optional_int(query(visit, "provider"), what="the provider")
    found = await reports.unmatched_sms(visit.rt, provider_id=provider_id, since=None, limit=PAGE)
    return render(
        visit,
        "admin/sms.html",
        sms=found,
        provider="" if provider_id is None else str(provider_id),
    )


@operator_page
async def changes(visit: Visit) -> Response:
    before = optional_int(query(visit, "before"), what="the page")
    who = query(visit, "actor") or None
    found = await operator_actions.recent(visit.rt, limit=PAGE + 1, before_id=before, actor=who)
    shown = found[:PAGE]
    older = shown[-1].id if len(found) > PAGE and shown else None
    return render(
        visit,
        "admin/changes.html",
        changes=shown,
        older=older,
        actor=who or "",
        money_keys=MONEY_KEYS,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/audit", audit, methods=["GET", "POST"]),
        Route("/admin/sms", unmatched_sms, methods=["GET"]),
        Route("/admin/changes", changes, methods=["GET"]),
    ]
