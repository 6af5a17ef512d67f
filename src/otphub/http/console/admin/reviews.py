"""The operator's read-only pages: the audit's status, SMS that reached no activation, and
the record of changes (who changed what, when)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.http.console.admin.common import optional_int, query
from otphub.http.console.web import Visit, operator_page, render
from otphub.services import audit as audit_service
from otphub.services import operator_actions, reports

PAGE = 50


@operator_page
async def audit(visit: Visit) -> Response:
    report = await audit_service.audit(visit.rt)
    return render(visit, "admin/audit.html", report=report)


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
    return render(visit, "admin/changes.html", changes=shown, older=older, actor=who or "")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/audit", audit, methods=["GET"]),
        Route("/admin/sms", unmatched_sms, methods=["GET"]),
        Route("/admin/changes", changes, methods=["GET"]),
    ]
