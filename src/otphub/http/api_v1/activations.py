"""API v1: buying numbers and following their activations."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from starlette.responses import Response

from otphub.domain.activation import Activation
from otphub.http.activation_json import activation_json, sms_json
from otphub.http.answers import JSON, dumps, json_answer
from otphub.http.api_v1 import models
from otphub.http.api_v1.auth import Me, Rt
from otphub.http.api_v1.refusals import GuardedRoute
from otphub.services import activation_views, idempotency, lifecycle, purchase
from otphub.services.runtime import Runtime

router = APIRouter(route_class=GuardedRoute, tags=["activations"])

ActivationId = Annotated[int, Path(ge=1, le=2**63 - 1)]
REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": models.Refusal, "description": "NO_KEY or BAD_KEY"},
    404: {"model": models.Refusal, "description": "NO_ACTIVATION (also another customer's)"},
    429: {"model": models.Refusal, "description": "TOO_MANY_REQUESTS (see Retry-After)"},
}


def _activation(rt: Runtime, act: Activation, status_code: int = 200) -> Response:
    return json_answer(activation_json(rt, act), status_code=status_code)


def _purchase_request(body: models.NewActivation) -> purchase.PurchaseRequest:
    def joined(values: list[int] | list[str] | None) -> str | None:
        return ",".join(str(v) for v in values) if values else None

    return purchase.PurchaseRequest(
        service=body.service,
        country=str(body.country),
        operator=body.operator or None,
        max_price=None if body.max_price is None else str(body.max_price),
        provider_ids=joined(body.provider_ids),
        except_provider_ids=joined(body.except_provider_ids),
        phone_exception=joined(body.phone_exception),
        ref=body.ref or None,
    )


def _request_hash(body: models.NewActivation) -> str:
    # The body as understood (defaults filled in, keys sorted): the same request written
    # with other spacing or key order is the same request.
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "/activations",
    status_code=201,
    response_model=models.Activation,
    summary="Buy a number",
    description="With `Idempotency-Key`, the same key and body answer the first answer again "
    "(nothing more is bought) for 24 hours; the same key with another body is 409 "
    "IDEMPOTENCY_KEY_REUSED, and while the first request is being answered 409 "
    "IDEMPOTENCY_KEY_IN_USE. A refusal (NO_NUMBERS, NO_BALANCE, ...) is not kept: a retry "
    "with the same key tries again.",
    responses={
        **REFUSALS,
        400: {"model": models.Refusal, "description": "BAD_REQUEST, BAD_SERVICE, WRONG_MAX_PRICE"},
        402: {"model": models.Refusal, "description": "NO_BALANCE"},
        404: {"model": models.Refusal, "description": "NO_NUMBERS"},
        409: {"model": models.Refusal, "description": "IDEMPOTENCY_KEY_REUSED or _IN_USE"},
    },
)
async def buy(
    rt: Rt,
    me: Me,
    body: models.NewActivation,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[ -~]+$"),
    ] = None,
) -> Response:
    request = _purchase_request(body)
    if idempotency_key is None:
        bought = await purchase.buy_number(rt, customer=me, request=request)
        act = await lifecycle.current(rt, customer=me, activation_id=str(bought.activation_id))
        return _activation(rt, act, status_code=201)
    answer = await idempotency.buy_once(
        rt,
        customer=me,
        key=idempotency_key,
        request_hash=_request_hash(body),
        request=request,
        render=lambda act: dumps(activation_json(rt, act)).decode(),
    )
    return Response(answer.body.encode(), status_code=answer.status_code, media_type=JSON)


@router.get(
    "/activations",
    response_model=models.Activations,
    summary="The customer's activations, newest first",
    responses=REFUSALS,
)
async def list_activations(
    rt: Rt,
    me: Me,
    state: Annotated[activation_views.StateFilter, Query()] = "all",
    limit: Annotated[int, Query(ge=1, le=activation_views.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    found = await activation_views.page(rt, customer=me, state=state, offset=offset, limit=limit)
    return json_answer({"activations": [activation_json(rt, act) for act in found]})


@router.get(
    "/activations/{activation_id}",
    response_model=models.Activation,
    summary="One activation, as it is now",
    responses=REFUSALS,
)
async def get_activation(rt: Rt, me: Me, activation_id: ActivationId) -> Response:
    act = await lifecycle.current(rt, customer=me, activation_id=str(activation_id))
    return _activation(rt, act)


async def _set_status(rt: Runtime, me: Me, activation_id: int, status: str) -> Response:
    await lifecycle.set_status(rt, customer=me, activation_id=str(activation_id), status=status)
    act = await lifecycle.current(rt, customer=me, activation_id=str(activation_id))
    return _activation(rt, act)


CHANGES = {
    **REFUSALS,
    409: {"model": models.Refusal, "description": "BAD_STATUS or EARLY_CANCEL_DENIED"},
}


@router.post(
    "/activations/{activation_id}/ready",
    response_model=models.Activation,
    summary="The number was entered at the service: SMS may come (setStatus 1)",
    responses=CHANGES,
)
async def ready(rt: Rt, me: Me, activation_id: ActivationId) -> Response:
    return await _set_status(rt, me, activation_id, "1")


@router.post(
    "/activations/{activation_id}/retry",
    response_model=models.Activation,
    summary="Wait for another SMS on the same number (setStatus 3)",
    responses=CHANGES,
)
async def retry(rt: Rt, me: Me, activation_id: ActivationId) -> Response:
    return await _set_status(rt, me, activation_id, "3")


@router.post(
    "/activations/{activation_id}/finish",
    response_model=models.Activation,
    summary="Done: the code worked, the activation is paid for (setStatus 6)",
    responses=CHANGES,
)
async def finish(rt: Rt, me: Me, activation_id: ActivationId) -> Response:
    return await _set_status(rt, me, activation_id, "6")


@router.post(
    "/activations/{activation_id}/cancel",
    response_model=models.Activation,
    summary="Cancel before any code: the money comes back (setStatus 8)",
    responses=CHANGES,
)
async def cancel(rt: Rt, me: Me, activation_id: ActivationId) -> Response:
    return await _set_status(rt, me, activation_id, "8")


@router.get(
    "/activations/{activation_id}/sms",
    response_model=models.SmsList,
    summary="Every SMS of the activation, oldest first",
    responses=REFUSALS,
)
async def sms_list(rt: Rt, me: Me, activation_id: ActivationId) -> Response:
    found = await activation_views.sms_of(rt, customer=me, activation_id=activation_id)
    return json_answer(
        {
            "sms": [
                sms_json(sms_id=s.id, text=s.text, code=s.code, received_at=s.received_at)
                for s in found
            ]
        }
    )
