"""OTPHub's JSON API v1 without a transport: typed results, each endpoint's request and
parser, and the event stream's bookkeeping (resume point, reconnect delay, failures).
``OTPHubClient`` and ``AsyncOTPHubClient`` only send them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from otphub.client import errors
from otphub.client.answers import (
    Answer,
    as_decimal,
    as_dict,
    as_int,
    as_list,
    as_str,
    as_str_or_none,
    bad_shape,
    load_json,
    refusal,
)
from otphub.client.results import State
from otphub.client.sse import ServerEvent, SSEDecoder

T = TypeVar("T")

PREFIX = "/api/v1"
ENDED = (State.FINISHED, State.CANCELLED)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    currency: str  # ISO 4217 letters ("USD")


@dataclass(frozen=True)
class Offer:
    """Free numbers at one price level for a service in a country."""

    service: str
    country: int
    price: Decimal
    count: int


@dataclass(frozen=True)
class Activation:
    """An activation as API v1 and the event stream show it (times in UTC)."""

    id: int
    phone: str
    service: str
    country: int
    operator: str
    price: Decimal
    currency: str
    state: State
    status: str  # what getStatus would answer
    code: str | None
    sms_text: str | None
    sms_at: datetime | None
    created_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None

    @property
    def ended(self) -> bool:
        return self.state in ENDED


@dataclass(frozen=True)
class Message:
    """One SMS received for an activation."""

    id: int
    text: str
    code: str | None
    received_at: datetime | None


@dataclass(frozen=True)
class Webhook:
    id: int
    url: str
    created_at: datetime | None


@dataclass(frozen=True)
class NewWebhook:
    """A webhook just registered: ``secret`` signs its deliveries and is shown only now."""

    id: int
    url: str
    secret: str


@dataclass(frozen=True)
class Event:
    """One event of an activation's stream: ``kind`` "state" (``activation`` set) or
    "sms" (``sms`` set); ``id`` resumes the stream after it."""

    kind: str
    id: str | None
    activation: Activation | None = None
    sms: Message | None = None
    data: Any = None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    text = as_str(value, "time")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_shape("time", value) from None


def activation_of(value: Any) -> Activation:
    row = as_dict(value, "activation")
    try:
        state = State(as_str(row.get("state"), "state"))
    except ValueError:
        raise bad_shape("state", row.get("state")) from None
    return Activation(
        id=as_int(row.get("id"), "id"),
        phone=as_str(row.get("phone"), "phone"),
        service=as_str(row.get("service"), "service"),
        country=as_int(row.get("country", 0)),
        operator=as_str(row.get("operator") or "any"),
        price=as_decimal(row.get("price"), "price"),
        currency=as_str(row.get("currency", "")),
        state=state,
        status=as_str(row.get("status", "")),
        code=as_str_or_none(row.get("code")),
        sms_text=as_str_or_none(row.get("sms_text")),
        sms_at=_time(row.get("sms_at")),
        created_at=_time(row.get("created_at")),
        expires_at=_time(row.get("expires_at")),
        ended_at=_time(row.get("ended_at")),
    )


def message_of(value: Any) -> Message:
    row = as_dict(value, "sms")
    return Message(
        id=as_int(row.get("id"), "id"),
        text=as_str(row.get("text", "")),
        code=as_str_or_none(row.get("code")),
        received_at=_time(row.get("received_at")),
    )


def code_of(activation: Activation) -> str | None:
    """``wait_for_code``'s reading of a state: the code once there is one to type (a
    finished activation still shows its code), None while waiting (also after a retry,
    whose code is the old one), ``ActivationCancelled`` when cancelled."""
    if activation.state in (State.CODE, State.FINISHED) and activation.code:
        return activation.code
    if activation.state is State.CANCELLED:
        raise errors.ActivationCancelled(
            "STATUS_CANCEL", "the activation was cancelled", activation_id=activation.id
        )
    return None


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request(Generic[T]):
    method: str
    path: str  # under /api/v1
    parse: Callable[[Any], T]  # the decoded JSON body (None for 204)
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes | None:
        return None if self.body is None else json.dumps(self.body).encode()

    def result(self, answer: Answer) -> T:
        problem = refusal(answer)
        if problem is not None:
            raise problem
        if answer.status_code == 204 or not answer.text:
            return self.parse(None)
        return self.parse(load_json(answer.text))


def _comma(values: Iterable[Any] | None) -> str | None:
    return None if values is None else ",".join(str(value) for value in values)


def _query(**values: Any) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value is not None}


def _money(value: Decimal | str | float | None) -> float | None:
    # JSON numbers; the decimal text first, so "0.1" is the double nearest to 0.1.
    return None if value is None else float(Decimal(str(value)))


def balance() -> Request[Balance]:
    def parse(body: Any) -> Balance:
        row = as_dict(body, "balance")
        return Balance(as_decimal(row.get("balance")), as_str(row.get("currency", "")))

    return Request("GET", "/balance", parse)


def offers(
    *, service: str | None, country: int | None, operator: str | None,
    max_price: Decimal | str | None, provider_ids: Iterable[int] | None,
    except_provider_ids: Iterable[int] | None,
) -> Request[list[Offer]]:  # fmt: skip
    def parse(body: Any) -> list[Offer]:
        return [
            Offer(
                service=as_str(row.get("service")),
                country=as_int(row.get("country")),
                price=as_decimal(row.get("price")),
                count=as_int(row.get("count")),
            )
            for row in (
                as_dict(item, "offer")
                for item in as_list(as_dict(body, "offers").get("offers"), "offers")
            )
        ]

    params = _query(
        service=service, country=country, operator=operator, max_price=max_price,
        provider_ids=_comma(provider_ids), except_provider_ids=_comma(except_provider_ids),
    )  # fmt: skip
    return Request("GET", "/offers", parse, params=params)


def buy(
    *, service: str, country: int, operator: str | None, max_price: Decimal | str | None,
    provider_ids: Iterable[int] | None, except_provider_ids: Iterable[int] | None,
    phone_exception: Iterable[str] | None, ref: str | None, idempotency_key: str | None,
) -> Request[Activation]:  # fmt: skip
    body: dict[str, Any] = {"service": service, "country": country}
    optional = {
        "operator": operator,
        "max_price": _money(max_price),
        "provider_ids": None if provider_ids is None else list(provider_ids),
        "except_provider_ids": None if except_provider_ids is None else list(except_provider_ids),
        "phone_exception": None if phone_exception is None else list(phone_exception),
        "ref": ref,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    return Request("POST", "/activations", activation_of, body=body, headers=headers)


def get(activation_id: int) -> Request[Activation]:
    return Request("GET", f"/activations/{int(activation_id)}", activation_of)


def activations(state: str, limit: int, offset: int) -> Request[list[Activation]]:
    def parse(body: Any) -> list[Activation]:
        rows = as_list(as_dict(body, "activations").get("activations"), "activations")
        return [activation_of(row) for row in rows]

    return Request(
        "GET", "/activations", parse, params=_query(state=state, limit=limit, offset=offset)
    )


def change(activation_id: int, what: str) -> Request[Activation]:
    """``ready``, ``retry``, ``finish`` or ``cancel``."""
    return Request("POST", f"/activations/{int(activation_id)}/{what}", activation_of)


def sms(activation_id: int) -> Request[list[Message]]:
    def parse(body: Any) -> list[Message]:
        return [message_of(row) for row in as_list(as_dict(body, "sms").get("sms"), "sms")]

    return Request("GET", f"/activations/{int(activation_id)}/sms", parse)


def webhooks() -> Request[list[Webhook]]:
    def parse(body: Any) -> list[Webhook]:
        rows = as_list(as_dict(body, "webhooks").get("webhooks"), "webhooks")
        return [
            Webhook(as_int(row.get("id")), as_str(row.get("url")), _time(row.get("created_at")))
            for row in (as_dict(item, "webhook") for item in rows)
        ]

    return Request("GET", "/webhooks", parse)


def add_webhook(url: str) -> Request[NewWebhook]:
    def parse(body: Any) -> NewWebhook:
        row = as_dict(body, "webhook")
        return NewWebhook(as_int(row.get("id")), as_str(row.get("url")), as_str(row.get("secret")))

    return Request("POST", "/webhooks", parse, body={"url": url})


def remove_webhook(webhook_id: int) -> Request[None]:
    return Request("DELETE", f"/webhooks/{int(webhook_id)}", lambda _: None)


# ---------------------------------------------------------------- the event stream

# Consecutive failed connections (nothing received) before ``events`` gives up.
MAX_FAILURES = 5
# A stream quiet for this long is dead: the server sends ``: ping`` every 15 s.
QUIET = 45.0


class Stream:
    """One activation's event stream across reconnections: where to resume
    (``Last-Event-ID``), how long to wait before reconnecting, whether it is over."""

    def __init__(self, activation_id: int, last_event_id: str | None = None) -> None:
        self.path = f"{PREFIX}/activations/{int(activation_id)}/events"
        self.activation_id = activation_id
        self._decoder = SSEDecoder()
        self._decoder.last_event_id = last_event_id
        self.ended = False
        self._failures = 0

    @property
    def last_event_id(self) -> str | None:
        return self._decoder.last_event_id

    @property
    def retry(self) -> float:
        """Seconds before reconnecting: the server's ``retry:``, else 2."""
        ms = self._decoder.retry_ms
        return 2.0 if ms is None else ms / 1000

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self._decoder.last_event_id is not None:
            headers["Last-Event-ID"] = self._decoder.last_event_id
        return headers

    def connected(self, answer: Answer | None, status_code: int, content_type: str) -> None:
        """Check a new connection's answer: refusals raise (``answer`` is its read body)."""
        if status_code == 200 and content_type.startswith("text/event-stream"):
            self._decoder = _fresh(self._decoder)
            return
        if answer is not None:
            problem = refusal(answer)
            if problem is not None:
                raise problem
        raise errors.UnexpectedAnswer(
            f"not an event stream (HTTP {status_code}, {content_type or 'no type'})",
            status_code=status_code,
            body=answer.text if answer is not None else "",
        )

    def feed(self, line: str) -> Event | None:
        try:
            raw = self._decoder.feed(line)
        except ValueError as too_large:
            raise errors.UnexpectedAnswer(str(too_large)) from None
        if raw is None:
            return None
        self._failures = 0
        event = _event(raw)
        if event.activation is not None and event.activation.ended:
            self.ended = True
        return event

    def failed(self, error: Exception) -> None:
        """A connection broke or closed early; raises once too many did in a row."""
        self._failures += 1
        if self._failures >= MAX_FAILURES:
            raise error


def _fresh(old: SSEDecoder) -> SSEDecoder:
    """A decoder for a new connection (a half-read event is dropped) that resumes where
    the last one was."""
    decoder = SSEDecoder()
    decoder.last_event_id = old.last_event_id
    decoder.retry_ms = old.retry_ms
    return decoder


def _event(raw: ServerEvent) -> Event:
    if raw.event == "state":
        data = load_json(raw.data)
        return Event("state", raw.id, activation=activation_of(data), data=data)
    if raw.event == "sms":
        data = load_json(raw.data)
        return Event("sms", raw.id, sms=message_of(data), data=data)
    return Event(raw.event, raw.id, data=raw.data)  # a kind this client does not know


class StreamClosed(Exception):
    """The server closed a stream before its activation ended (then it is resumed)."""
