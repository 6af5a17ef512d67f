"""API v1: the customer's webhooks (up to 3 URLs that each SMS is delivered to, signed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from otphub.http.activation_json import iso
from otphub.http.api_v1 import models
from otphub.http.api_v1.auth import Me, Rt
from otphub.http.api_v1.refusals import GuardedRoute
from otphub.services import webhooks

router = APIRouter(route_class=GuardedRoute, tags=["webhooks"])

REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": models.Refusal, "description": "NO_KEY or BAD_KEY"},
    429: {"model": models.Refusal, "description": "TOO_MANY_REQUESTS (see Retry-After)"},
}


@router.get(
    "/webhooks",
    response_model=models.Webhooks,
    summary="The customer's webhooks",
    responses=REFUSALS,
)
async def list_webhooks(rt: Rt, me: Me) -> models.Webhooks:
    found = await webhooks.list_of(rt, customer_id=me.id)
    return models.Webhooks(
        webhooks=[
            models.Webhook(id=w.id, url=w.url, created_at=iso(w.created_at) or "") for w in found
        ]
    )


@router.post(
    "/webhooks",
    status_code=201,
    response_model=models.NewWebhook,
    summary="Register a URL (at most 3)",
    description="Each SMS is POSTed to it as JSON `{activationId, service, text, code, "
    "country, receivedAt}` with `X-OTPHub-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "
    '"<t>.<raw body>")>`. The secret is shown only in this answer. URLs whose host resolves '
    "to a private, loopback or link-local address are refused.",
    responses={**REFUSALS, 400: {"model": models.BadRequest, "description": "BAD_REQUEST"}},
)
async def add_webhook(rt: Rt, me: Me, body: models.NewWebhookBody) -> models.NewWebhook:
    added = await webhooks.add(rt, customer_id=me.id, url=body.url)
    return models.NewWebhook(id=added.id, url=added.url, secret=added.secret)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Remove a webhook: its undelivered SMS are not sent",
    responses={**REFUSALS, 404: {"model": models.Refusal, "description": "NOT_FOUND"}},
)
async def remove_webhook(
    rt: Rt, me: Me, webhook_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> Response:
    await webhooks.remove(rt, webhook_id=webhook_id, customer_id=me.id)
    return Response(status_code=204)
