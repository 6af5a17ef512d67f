"""Who is asking: ``Authorization: Bearer <customer API key>`` (the keys of ``api_key``),
with the customer API's limits: the per-key request rate, and on a bad key the limit of
failed authentications per address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from otphub import metrics
from otphub.domain import errors
from otphub.http import limits
from otphub.http.api_v1.refusals import Refused
from otphub.http.limits import Limiter
from otphub.services import accounts
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="CustomerKey",
    description="A customer API key, the same as the protocol's `api_key`.",
)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _too_many(reason: str, seconds: float) -> Refused:
    metrics.RATE_LIMITED.labels(reason).inc()
    return Refused("TOO_MANY_REQUESTS", {"Retry-After": limits.retry_after(seconds)})


async def customer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Customer:
    rt = runtime(request)
    limiter: Limiter = request.app.state.limiter
    key = credentials.credentials.strip() if credentials is not None else ""
    try:
        found = await accounts.authenticate_customer(rt, key or None)
    except errors.BadKey:
        # As the customer API: counted only once a key has failed.
        client = request.client
        blocked = limiter.failed_auth(client.host if client else "-")
        if blocked:
            raise _too_many("auth_failures", blocked) from None
        raise
    wait = await limiter.customer_wait(rt, found)
    if wait:
        raise _too_many("key_rate", wait)
    return found


Rt = Annotated[Runtime, Depends(runtime)]
Me = Annotated[Customer, Depends(customer)]
