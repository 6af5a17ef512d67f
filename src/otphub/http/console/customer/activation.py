"""``/activations/{id}``: the number, its SMS as they arrive (an event stream on
``/activations/{id}/events``, the API's own, authenticated by the session cookie), and
the finish, cancel and another-SMS buttons: ``lifecycle.set_status``, the API's rules."""

from __future__ import annotations

from starlette.responses import Response

from otphub.domain import errors
from otphub.domain.activation import HAS_CODE_STATES, LIVE_STATES, Activation, State
from otphub.http import events
from otphub.http.console.customer.common import STATE_LABELS, me, shown_state, state_label
from otphub.http.console.web import Endpoint, Visit, customer_page, redirect, render
from otphub.services import lifecycle

# setStatus of each button, and what the customer is told when it worked.
ACTIONS: dict[str, tuple[str, str]] = {
    "finish": ("6", "Finished: the activation is paid for."),
    "cancel": ("8", "Cancelled: the money set aside is back on your balance."),
    "retry": ("3", "Waiting for another SMS on the same number."),
}


async def _page(
    visit: Visit, act: Activation, *, error: str | None = None, status_code: int = 200
) -> Response:
    sms = await lifecycle.sms_after(visit.rt, activation_id=act.id, after=0)
    return render(
        visit,
        "customer/activation.html",
        status_code=status_code,
        act=act,
        sms=sms,
        state=shown_state(act),
        state_label=state_label(act),
        labels=STATE_LABELS,
        live=act.state in LIVE_STATES,
        can_finish=act.state in HAS_CODE_STATES,
        can_retry=act.state in HAS_CODE_STATES,
        can_cancel=act.state is State.WAITING,
        cancel_from=act.created_at + visit.rt.settings.early_cancel,
        service_name=visit.rt.catalog.services.get(act.service, act.service),
        country=visit.rt.catalog.countries.get(act.country_id),
        time_zone=visit.rt.settings.time_zone,
        error=error,
    )


def _activation_id(visit: Visit) -> str:
    return str(visit.request.path_params["activation_id"])


@customer_page
async def activation_page(visit: Visit) -> Response:
    act = await lifecycle.current(visit.rt, customer=me(visit), activation_id=_activation_id(visit))
    return await _page(visit, act)


def change(action: str) -> Endpoint:
    """POST /activations/{id}/finish, /cancel or /retry."""
    status, done = ACTIONS[action]

    @customer_page
    async def endpoint(visit: Visit) -> Response:
        customer = me(visit)
        raw_id = _activation_id(visit)
        try:
            await lifecycle.set_status(
                visit.rt, customer=customer, activation_id=raw_id, status=status
            )
        except errors.ProtocolError as refused:
            if refused.word in ("NO_ACTIVATION", "WRONG_ACTIVATION_ID"):
                raise  # the not-found page
            act = await lifecycle.current(visit.rt, customer=customer, activation_id=raw_id)
            return await _page(
                visit,
                act,
                error=errors.explain(refused.word),
                status_code=errors.http_status(refused.word),
            )
        return redirect(visit, f"/activations/{int(raw_id)}", flash=done)

    return endpoint


@customer_page
async def activation_events(visit: Visit) -> Response:
    """The API's event stream of the activation, for the signed-in customer."""
    return await events.stream_of(visit.request, visit.rt, me(visit))
