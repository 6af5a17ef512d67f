"""``/stubs/handler_api.php``: the sms-activate protocol.

Each action is a small function from (runtime, customer, parameters) to an answer. Every
answer, errors included, is HTTP 200 with a byte-exact body; an unexpected failure answers
``ERROR_SQL`` and nothing else, never a trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import structlog
from starlette.requests import Request
from starlette.responses import Response

from otphub import metrics
from otphub.config import RequestLogs
from otphub.domain import dialects, errors
from otphub.domain.activation import LIVE_STATES, Activation, State, status_answer
from otphub.domain.numbers import parse_whole
from otphub.http import limits
from otphub.http import reference_actions as reference
from otphub.http.answers import json_answer, text
from otphub.http.dialects import refusal as refused
from otphub.http.limits import Limiter
from otphub.http.params import Action, Params, read_params
from otphub.services import accounts, changes, history, lifecycle, purchase
from otphub.services.accounts import Customer
from otphub.services.changes import Receive
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.api")


async def get_balance(rt: Runtime, customer: Customer, _params: Params) -> Response:
    # An expired hold is money the customer has again, even before the sweeper runs.
    available = await lifecycle.available_balance(rt, customer=customer)
    return text(f"ACCESS_BALANCE:{rt.money.format(available)}")


def _purchase_request(params: Params) -> purchase.PurchaseRequest:
    return purchase.PurchaseRequest(
        service=params.get("service"),
        country=params.get("country"),
        operator=params.get("operator"),
        max_price=params.get("maxPrice", params.get("max_price")),
        provider_ids=params.get("providerIds"),
        except_provider_ids=params.get("exceptProviderIds"),
        phone_exception=params.get("phoneException"),
        ref=params.get("ref"),
        order_id=params.get("orderId"),
        activation_type=params.get("activationType"),
    )


async def get_number(rt: Runtime, customer: Customer, params: Params) -> Response:
    # getNumber has no orderId: only getNumberV2 is idempotent.
    request = replace(_purchase_request(params), order_id=None)
    bought = await purchase.buy_number(rt, customer=customer, request=request)
    return text(f"ACCESS_NUMBER:{bought.activation_id}:{bought.phone}")


async def get_number_v2(rt: Runtime, customer: Customer, params: Params) -> Response:
    bought = await purchase.buy_number(rt, customer=customer, request=_purchase_request(params))
    country = rt.catalog.countries[bought.country_id]
    return json_answer(
        {
            "activationId": bought.activation_id,
            "phoneNumber": bought.phone,
            "activationCost": rt.money.json_number(bought.price),
            "currency": rt.money.numeric,
            "countryCode": str(bought.country_id),
            "countryPhoneCode": int(country.phone_prefix),
            "canGetAnotherSms": True,
            "activationTime": rt.timestamp(bought.created_at),
            "activationEndTime": rt.timestamp(bought.expires_at),
            "activationOperator": bought.operator or "any",
        }
    )


# The status polls: answers from the activation as the customer sees it now, which
# ``_answer`` reads together with the key (see ``accounts.authenticate_polling``).
Poll = Callable[[Runtime, Activation], Response]


def get_status(_rt: Runtime, act: Activation) -> Response:
    return text(status_answer(act.state, act.code))


def get_status_v2(rt: Runtime, act: Activation) -> Response:
    if act.state is State.CANCELLED:
        return text("STATUS_CANCEL")
    sms = None
    if act.sms_at is not None:
        sms = {"dateTime": rt.timestamp(act.sms_at), "code": act.code, "text": act.sms_text}
    return json_answer({"verificationType": 0, "sms": sms, "call": None})


def get_full_sms(_rt: Runtime, act: Activation) -> Response:
    if act.sms_text is not None:
        return text(f"FULL_SMS:{act.sms_text}")
    if act.state is State.WAITING:
        return text("STATUS_WAIT_CODE")
    return text("STATUS_CANCEL")


POLLS: dict[str, Poll] = {
    "getStatus": get_status,
    "getStatusV2": get_status_v2,
    "getFullSms": get_full_sms,
}


async def set_status(rt: Runtime, customer: Customer, params: Params) -> Response:
    answer = await lifecycle.set_status(
        rt, customer=customer, activation_id=params.get("id"), status=params.get("status")
    )
    return text(answer)


def _activation_status_code(act: Activation) -> str:
    # getActiveActivations: "4" waiting, "2" code received, "3" waiting for another SMS.
    return {State.WAITING: "4", State.CODE: "2", State.RETRY: "3"}.get(act.state, "4")


def _active_row(rt: Runtime, act: Activation) -> dict[str, object]:
    return {
        "activationId": str(act.id),
        "serviceCode": act.service,
        "phoneNumber": act.phone,
        "activationCost": rt.money.json_number(act.price),
        "activationStatus": _activation_status_code(act),
        "smsCode": None if act.code is None else [act.code],
        "smsText": act.sms_text,
        "activationTime": rt.timestamp(act.created_at),
        "discount": rt.money.format(0),
        "repeated": "0",
        "countryCode": str(act.country_id),
        "countryName": rt.catalog.countries[act.country_id].name_en,
        "canGetAnotherSms": "1",
        "currency": rt.money.numeric,
    }


async def get_active_activations(rt: Runtime, customer: Customer, _params: Params) -> Response:
    live = await lifecycle.live_activations(rt, customer=customer)
    rows = [_active_row(rt, act) for act in live]
    if customer.dialect == dialects.GRIZZLY:
        return json_answer(rows)  # the same rows, a top-level list; none is []
    if customer.dialect == dialects.HEROSMS:
        # The same rows, with the id and the country as integers; none is an empty list.
        for row, act in zip(rows, live, strict=True):
            row["activationId"], row["countryCode"] = act.id, act.country_id
        return json_answer({"data": rows})
    if not rows:
        raise errors.NoActivations()
    return json_answer({"status": "success", "activeActivations": rows})


async def get_history(rt: Runtime, customer: Customer, params: Params) -> Response:
    lines = await history.history(
        rt,
        customer=customer,
        start=params.get("start"),
        end=params.get("end"),
        offset=params.get("offset"),
        limit=params.get("limit"),
    )
    if customer.dialect == dialects.HEROSMS:
        # sms-activate's row with herosms's names: "id" is the integer "activationId",
        # "status" the string "activationStatus", and the integer "countryCode" is added.
        return json_answer(
            {
                "data": [
                    {
                        "activationId": line.activation.id,
                        "date": rt.timestamp(line.activation.created_at),
                        "phone": line.activation.phone,
                        "sms": line.texts,
                        "cost": rt.money.json_number(line.activation.price),
                        "activationStatus": line.status,
                        "currency": rt.money.numeric,
                        "countryCode": line.activation.country_id,
                    }
                    for line in lines
                ]
            }
        )
    return json_answer(
        [
            {
                "id": line.activation.id,
                "date": rt.timestamp(line.activation.created_at),
                "phone": line.activation.phone,
                "sms": line.texts,
                "cost": rt.money.json_number(line.activation.price),
                "status": line.status,
                "currency": rt.money.numeric,
            }
            for line in lines
        ]
    )


ACTIONS: dict[str, Action] = {
    "getBalance": get_balance,
    "getBalanceAndCashBack": get_balance,
    "getNumber": get_number,
    "getNumberV2": get_number_v2,
    "setStatus": set_status,
    "getActiveActivations": get_active_activations,
    "getHistory": get_history,
    "getPrices": reference.get_prices,
    "getPricesV2": reference.get_prices_v2,
    "getPricesV3": reference.get_prices_v3,
    "getNumbersStatus": reference.get_numbers_status,
    "getTopCountriesByService": reference.get_top_countries_by_service,
    "getCountries": reference.get_countries,
    "getServicesList": reference.get_services_list,
    "getOperators": reference.get_operators,
}


# OTPHub's extension: ``wait=N`` on the status polls (the spec's "OTPHub's extensions").
MAX_WAIT = 60
# A re-read this long after the activation's deadline finds it overdue (whole seconds).
_PAST_DEADLINE = 0.05


def wait_seconds(raw: str) -> int:
    """``wait``: 0 to 60 seconds; more is 60; malformed is 0 (no wait)."""
    value = parse_whole(raw)
    if value is None or value <= 0:
        return 0
    return min(value, MAX_WAIT)


async def _long_poll(
    rt: Runtime,
    customer: Customer,
    poll: Poll,
    act: Activation,
    first: bytes,
    seconds: int,
    receive: Receive | None,
) -> Response:
    """The poll's answer as soon as its body differs from ``first`` (the answer at
    arrival), or the current one after ``seconds``. Holds no database connection while it
    waits: each turn registers for the activation's next change, re-reads it (one
    statement), and waits for a change, the deadline of the activation (then resolved on
    the re-read), the end of the wait, or the client going away (then nobody reads the
    answer: it ends at once, freeing its task and its connection slot). Keeps no answer
    while it waits: 10,000 waiting requests' memory counts."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + seconds
    activation_id = str(act.id)
    while True:
        async with changes.watch(rt, act.id) as watching:
            act = await lifecycle.current(rt, customer=customer, activation_id=activation_id)
            answer = poll(rt, act)
            remaining = ends - loop.time()
            if answer.body != first or act.state not in LIVE_STATES or remaining <= 0:
                return answer
            del answer
            until_deadline = act.expires_at - rt.clock.now() + _PAST_DEADLINE
            await watching.wait(
                min(remaining, max(until_deadline, _PAST_DEADLINE)), receive=receive
            )
            if watching.gone:
                return poll(rt, act)  # nobody reads it


def _too_many(reason: str, seconds: float, dialect: str = dialects.DEFAULT) -> Response:
    metrics.RATE_LIMITED.labels(reason).inc()
    response = refused(dialect, "TOO_MANY_REQUESTS", status_code=429)
    response.headers["Retry-After"] = limits.retry_after(seconds)
    return response


class _Speaker:
    """The dialect of this request's answer: the default until a customer is known."""

    __slots__ = ("dialect",)

    def __init__(self) -> None:
        self.dialect: str = dialects.DEFAULT


async def _answer(
    rt: Runtime,
    params: Params,
    limiter: Limiter,
    ip: str,
    speaker: _Speaker,
    receive: Receive | None,
) -> Response:
    name = params.get("action", "")
    poll = POLLS.get(name)
    polled: Activation | None = None
    try:
        if poll is None:
            customer = await accounts.authenticate_customer(rt, params.get("api_key"))
        else:
            wanted = lifecycle.polled_id(params.get("id"))
            customer, polled = await accounts.authenticate_polling(
                rt, params.get("api_key"), wanted
            )
    except errors.BadKey:
        # Counted only once a key has failed: a valid key is never refused for what
        # others at the same address sent.
        blocked = limiter.failed_auth(ip)
        if blocked:
            return _too_many("auth_failures", blocked)
        speaker.dialect = await accounts.refused_dialect(rt, params.get("api_key"))
        raise
    except errors.Banned:
        speaker.dialect = await accounts.refused_dialect(rt, params.get("api_key"))
        raise
    speaker.dialect = customer.dialect
    wait = await limiter.customer_wait(rt, customer)
    if wait:
        return _too_many("key_rate", wait, customer.dialect)
    if poll is not None:
        act = await lifecycle.as_seen_now(
            rt, customer=customer, activation_id=params.get("id"), read=polled
        )
        answer = poll(rt, act)
        wanted_wait = params.get("wait")
        if wanted_wait is not None and act.state in LIVE_STATES:
            seconds = wait_seconds(wanted_wait)
            # Enough requests wait on this activation already: answer now (a wait is "at
            # most N seconds"; the client asks again).
            if seconds and not changes.crowded(rt, act.id):
                first = bytes(answer.body)
                del answer, polled  # nothing kept on the stack while waiting
                return await _long_poll(rt, customer, poll, act, first, seconds, receive)
        return answer
    action = ACTIONS.get(name)
    if action is None:
        raise errors.BadAction()
    return await action(rt, customer, params)


async def handle(
    rt: Runtime,
    params: Params,
    *,
    limiter: Limiter,
    ip: str,
    receive: Receive | None = None,
) -> Response:
    """``receive``: the request's ASGI receive, so that a ``wait=`` ends when its client
    goes away (see ``changes.Watch``)."""
    speaker = _Speaker()
    try:
        return await _answer(rt, params, limiter, ip, speaker, receive)
    except errors.ProtocolError as refusal:
        return refused(speaker.dialect, refusal.word)
    except Exception:
        # Never a trace or SQL to the client; the operator sees it in the log.
        log.exception("customer_api_failure", action=_action_label(params))
        return refused(speaker.dialect, "ERROR_SQL")


def _action_label(params: Params) -> str:
    action = params.get("action", "")
    return action if action in ACTIONS or action in POLLS else "other"


def _logged(setting: RequestLogs, action: str, answer: str) -> bool:
    """Whether a request gets a log line. ``except_polls`` leaves out the status polls
    answered with a status: they are most of the traffic (each client repeats them every
    few seconds), each says nothing a later request will not say, and ``/metrics`` counts
    them. A poll refused (a bad key, no such activation) is still logged."""
    if setting == "all":
        return True
    if setting == "none":
        return False
    return not (action in POLLS and answer.startswith(_POLL_STATUSES))


_POLL_STATUSES = ("STATUS_", "FULL_SMS", "json")


async def endpoint(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    limiter: Limiter = request.app.state.limiter
    started = time.perf_counter()
    try:
        params = await read_params(request)
    except limits.RequestTooLarge:
        return text("REQUEST_TOO_LARGE", status_code=413)
    except Exception:
        log.warning("unreadable_request_body")
        params = {}
    client = request.scope.get("client")
    ip = client[0] if client else "-"
    response = await handle(rt, params, limiter=limiter, ip=ip, receive=request.receive)
    action = _action_label(params)
    answer = metrics.answer_label(bytes(response.body))
    metrics.requests_of(action, answer).inc()
    if _logged(rt.settings.log_requests, action, answer):
        # Never the query string or the key: this protocol carries keys in URLs.
        log.info(
            "request",
            action=action,
            answer=answer,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 2),
            ip=ip,
        )
    return response
