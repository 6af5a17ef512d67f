"""``/webhooks``: the URLs each SMS is delivered to (``services/webhooks.py``, the API's
rules): add one (its signing secret shown once), send it a test message (queued in the
durable outbox, sent by the delivery worker), remove one; each with its latest
deliveries."""

from __future__ import annotations

from starlette.responses import Response

from otphub.domain import errors
from otphub.domain.numbers import parse_whole
from otphub.http.console.customer.common import me, sentence
from otphub.http.console.web import Visit, customer_page, not_found, redirect, render
from otphub.services import webhooks


async def _page(
    visit: Visit,
    *,
    added: webhooks.NewWebhook | None = None,
    url: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    found = await webhooks.with_attempts(visit.rt, customer_id=me(visit).id)
    return render(
        visit,
        "customer/webhooks.html",
        status_code=status_code,
        hooks=found,
        added=added,
        url=url,
        error=error,
        most=webhooks.MAX_PER_CUSTOMER,
    )


@customer_page
async def webhooks_page(visit: Visit) -> Response:
    if visit.request.method == "GET":
        return await _page(visit)
    url = visit.field("url")[:2100]
    try:
        added = await webhooks.add(visit.rt, customer_id=me(visit).id, url=url)
    except errors.InvalidInput as refused:
        return await _page(visit, url=url, error=sentence(str(refused)), status_code=400)
    # Rendered, not redirected: the secret exists in clear only in this answer.
    return await _page(visit, added=added)


def _webhook_id(visit: Visit) -> int | None:
    found = parse_whole(str(visit.request.path_params["webhook_id"]))
    return found if found is not None and found > 0 else None


@customer_page
async def send_test(visit: Visit) -> Response:
    webhook_id = _webhook_id(visit)
    if webhook_id is None:
        return not_found(visit)
    try:
        queued = await webhooks.send_test(visit.rt, webhook_id=webhook_id, customer_id=me(visit).id)
    except errors.NotFound:
        return not_found(visit)
    message = (
        "A test message is on its way: it is sent within seconds, and its outcome shows below."
        if queued
        else "A test message was queued a moment ago already."
    )
    return redirect(visit, "/webhooks", flash=message)


@customer_page
async def remove(visit: Visit) -> Response:
    webhook_id = _webhook_id(visit)
    if webhook_id is None:
        return not_found(visit)
    try:
        await webhooks.remove(visit.rt, webhook_id=webhook_id, customer_id=me(visit).id)
    except errors.NotFound:
        return not_found(visit)
    return redirect(visit, "/webhooks", flash="The webhook is removed: nothing more is sent to it.")
