"""``otphub.client`` against fakes (httpx's MockTransport), for what OTPHub itself never
answers: a server without ``wait=`` (the fall-back to polling), the herosms and grizzly
dialects' shapes, 429, answers that are not the protocol, and the event stream's
reconnection. No database: nothing here is stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from otphub.client import (
    ActivationCancelled,
    AsyncOTPHubClient,
    AsyncSmsActivateClient,
    BadKey,
    BadRequest,
    Banned,
    EarlyCancelDenied,
    IdempotencyKeyReused,
    NoActivation,
    NoBalance,
    NoNumbers,
    OTPHubClient,
    ProtocolError,
    SmsActivateClient,
    State,
    TooManyRequests,
    UnexpectedAnswer,
    WaitTimeout,
    WrongMaxPrice,
)
from otphub.client.sse import SSEDecoder

BASE = "http://fake.test"


def text(body: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, text=body, headers={"content-type": "text/plain"})


def as_json(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


class NoWaitServer:
    """A protocol server that ignores ``wait=``: every getStatus is answered at once,
    STATUS_WAIT_CODE until the ``ready_after``-th, then the code."""

    def __init__(self, ready_after: int = 4) -> None:
        self.ready_after = ready_after
        self.waits: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/stubs/handler_api.php"
        assert request.url.params["action"] == "getStatus"
        self.waits.append(request.url.params.get("wait"))
        if len(self.waits) < self.ready_after:
            return text("STATUS_WAIT_CODE")
        return text("STATUS_OK:5521")


def test_a_server_without_wait_is_polled() -> None:
    server = NoWaitServer()
    http = httpx.Client(transport=httpx.MockTransport(server))
    api = SmsActivateClient(BASE, "k", http=http)
    assert api.wait_for_code(7, timeout=30, interval=0.01) == "5521"
    # the first request offered a long-poll; its answer came at once, unchanged: polling
    assert server.waits[0] is not None and int(server.waits[0]) >= 2
    assert server.waits[1:] == [None, None, None]
    assert api.wait_supported is False
    # the client remembers: its next wait polls from the start
    server.waits.clear()
    assert api.wait_for_code(7, timeout=30, interval=0.01) == "5521"
    assert server.waits == [None] * 4  # no wait= offered again


def test_async_a_server_without_wait_is_polled() -> None:
    server = NoWaitServer(ready_after=3)

    async def handler(request: httpx.Request) -> httpx.Response:
        return server(request)

    async def flow() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with AsyncSmsActivateClient(BASE + "/stubs/handler_api.php", "k", http=http) as api:
            assert await api.wait_for_code(7, timeout=30, interval=0.01) == "5521"
            assert api.wait_supported is False
        await http.aclose()

    asyncio.run(flow())
    assert server.waits[0] is not None and server.waits[1:] == [None, None]


def test_polling_ends_on_cancel_and_on_timeout() -> None:
    answers = iter(["STATUS_WAIT_CODE", "STATUS_CANCEL"])
    http = httpx.Client(transport=httpx.MockTransport(lambda r: text(next(answers))))
    api = SmsActivateClient(BASE, "k", http=http)
    with pytest.raises(ActivationCancelled):
        api.wait_for_code(7, timeout=30, interval=0.01)

    http = httpx.Client(transport=httpx.MockTransport(lambda r: text("STATUS_WAIT_CODE")))
    api = SmsActivateClient(BASE, "k", http=http)
    with pytest.raises(WaitTimeout):
        api.wait_for_code(7, timeout=0.3, interval=0.05)


def test_429_is_too_many_requests_and_wait_goes_on() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, text="TOO_MANY_REQUESTS", headers={"Retry-After": "0"})
        return text("STATUS_OK:42")

    api = SmsActivateClient(BASE, "k", http=httpx.Client(transport=httpx.MockTransport(handler)))
    assert api.wait_for_code(7, timeout=30, interval=0.01) == "42"
    assert len(calls) == 2

    limited = httpx.MockTransport(
        lambda r: httpx.Response(429, text="TOO_MANY_REQUESTS", headers={"Retry-After": "3"})
    )
    api = SmsActivateClient(BASE, "k", http=httpx.Client(transport=limited))
    with pytest.raises(TooManyRequests) as refused:
        api.get_balance()
    assert refused.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("status", "title", "expected"),
    [
        (401, "BAD_KEY", BadKey),
        (402, "NO_BALANCE", NoBalance),
        (404, "NO_NUMBERS", NoNumbers),
        (404, "NO_ACTIVATION", NoActivation),
        (409, "EARLY_CANCEL_DENIED", EarlyCancelDenied),
        (400, "WRONG_MAX_PRICE:0.50", WrongMaxPrice),
    ],
)
def test_herosms_json_errors(status: int, title: str, expected: type[ProtocolError]) -> None:
    """The herosms dialect: the HTTP status and ``{"title": WORD, "details": text}``."""
    answer = as_json({"title": title, "details": "explained"}, status)
    api = SmsActivateClient(BASE, "k", http=httpx.Client(transport=httpx.MockTransport(
        lambda r: answer
    )))  # fmt: skip
    with pytest.raises(expected) as refused:
        api.get_number("tg")
    assert refused.value.word == title
    assert refused.value.message == "explained"
    if expected is WrongMaxPrice:
        assert refused.value.min_price == Decimal("0.50")  # type: ignore[attr-defined]


def test_dialect_shapes() -> None:
    row = {
        "activationId": 635468021, "serviceCode": "tg", "phoneNumber": "79584123456",
        "activationCost": 12.5, "activationStatus": "2", "smsCode": ["12345"],
        "smsText": "Telegram code: 12345", "activationTime": "2026-06-01 16:59:16",
        "countryCode": 2, "canGetAnotherSms": "1", "currency": 840,
    }  # fmt: skip
    sms_activate = {"status": "success", "activeActivations": [{**row, "activationId": "635468021",
                                                                "countryCode": "2"}]}  # fmt: skip
    for body in (sms_activate, [row], {"data": [row]}):  # sms-activate, grizzly, herosms
        http = httpx.Client(transport=httpx.MockTransport(lambda r, b=body: as_json(b)))
        (active,) = SmsActivateClient(BASE, "k", http=http).get_active_activations()
        assert (active.activation_id, active.country, active.codes) == (635468021, 2, ("12345",))
        assert active.cost == Decimal("12.5") and active.can_get_another_sms
    # grizzly's empty list, herosms's 404 NO_ACTIVATIONS, the protocol's word: all empty
    for answer in (as_json([]), as_json({"title": "NO_ACTIVATIONS"}, 404), text("NO_ACTIVATIONS")):
        http = httpx.Client(transport=httpx.MockTransport(lambda r, a=answer: a))
        assert SmsActivateClient(BASE, "k", http=http).get_active_activations() == []
    # getServicesList: {"services": [...]} or herosms's top-level list
    services: list[object] = [
        {"status": "success", "services": [{"code": "tg", "name": "Telegram"}]},
        [{"code": "tg", "name": "Telegram"}],
    ]
    for listed in services:
        http = httpx.Client(transport=httpx.MockTransport(lambda r, b=listed: as_json(b)))
        (service,) = SmsActivateClient(BASE, "k", http=http).get_services_list()
        assert (service.code, service.name) == ("tg", "Telegram")


def test_answers_that_are_not_the_protocol() -> None:
    for answer in (
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(301, headers={"location": "https://elsewhere"}),
        text("ACCESS_NUMBER:notanumber:7900"),
        text("SOMETHING_ELSE"),
    ):
        http = httpx.Client(transport=httpx.MockTransport(lambda r, a=answer: a))
        with pytest.raises(UnexpectedAnswer):
            SmsActivateClient(BASE, "k", http=http).get_number("tg")


def test_parameters_sent() -> None:
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        return text("ACCESS_NUMBER:5:79001234567")

    api = SmsActivateClient(
        BASE, "secret", http=httpx.Client(transport=httpx.MockTransport(handler))
    )
    number = api.get_number(
        "tg", 2, operator=["mts", "beeline"], max_price=Decimal("0.75"), provider_ids=[1, 2],
        except_provider_ids=[3], phone_exception=["7918", "7900111"], ref="friend",
    )  # fmt: skip
    assert (number.activation_id, number.phone) == (5, "79001234567")
    assert dict(seen[0]) == {
        "api_key": "secret", "action": "getNumber", "service": "tg", "country": "2",
        "operator": "mts,beeline", "maxPrice": "0.75", "providerIds": "1,2",
        "exceptProviderIds": "3", "phoneException": "7918,7900111", "ref": "friend",
    }  # fmt: skip
    assert "secret" not in repr(api)


def test_sse_decoder() -> None:
    decoder = SSEDecoder()
    lines = ["retry: 2000", ": ping", "id: 7", "event: state", 'data: {"a":', "data: 1}", ""]
    events = [decoder.feed(line) for line in lines]
    assert events[:-1] == [None] * 6
    last = events[-1]
    assert last is not None and (last.event, last.data, last.id) == ("state", '{"a":\n1}', "7")
    assert decoder.retry_ms == 2000
    assert decoder.feed("") is None  # no data: nothing dispatched
    assert decoder.feed("data:x") is None
    plain = decoder.feed("")
    assert plain is not None and (plain.event, plain.data, plain.id) == ("message", "x", "7")


# ---------------------------------------------------------------- API v1


def activation(state: str = "waiting", code: str | None = None, id_: int = 9) -> dict[str, object]:
    return {
        "id": id_, "phone": "79001234567", "service": "tg", "country": 0, "operator": "mts",
        "price": 0.5, "currency": "USD", "state": state, "status": "STATUS_WAIT_CODE",
        "code": code, "sms_text": None, "sms_at": None, "created_at": "2026-06-01T17:30:57Z",
        "expires_at": "2026-06-01T17:50:57Z", "ended_at": None,
    }  # fmt: skip


def sse(*events: tuple[str, str, object]) -> bytes:
    return "".join(
        f"id: {id_}\nevent: {kind}\ndata: {json.dumps(data)}\n\n" for id_, kind, data in events
    ).encode()


class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A stream that sends its chunks, then breaks like a dropped connection."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset")

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for chunk in self.chunks:
            yield chunk
        raise httpx.ReadError("connection reset")


class EventServer:
    """Serves one activation's events: the first connection breaks after the first SMS,
    the second (which must resume with Last-Event-ID) sends the rest and the end."""

    def __init__(self, *, clean_close: bool = False) -> None:
        self.resumed_from: list[str | None] = []
        self.clean_close = clean_close  # the first connection ends without an error

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/activations/9/events"
        assert request.headers["authorization"] == "Bearer ohc_key"
        self.resumed_from.append(request.headers.get("last-event-id"))
        headers = {"content-type": "text/event-stream"}
        if len(self.resumed_from) == 1:
            first = b"retry: 10\n\n" + sse(("a1", "state", activation()))
            sms = {
                "id": 1,
                "text": "code 111",
                "code": "111",
                "received_at": "2026-06-01T17:31:00Z",
            }
            first += b": ping\n\n" + sse(("a2", "sms", sms))
            if self.clean_close:
                return httpx.Response(200, headers=headers, content=first)
            return httpx.Response(200, headers=headers, stream=Broken(first))
        rest = sse(
            ("a3", "state", activation("code", "111")),
            ("a4", "state", activation("finished", "111")),
        )
        return httpx.Response(200, headers=headers, content=rest)


@pytest.mark.parametrize("clean_close", [False, True])
def test_events_resume_with_last_event_id(clean_close: bool) -> None:
    server = EventServer(clean_close=clean_close)
    api = OTPHubClient(BASE, "ohc_key", http=httpx.Client(transport=httpx.MockTransport(server)))
    events = list(api.events(9))
    assert [(e.kind, e.id) for e in events] == [
        ("state", "a1"), ("sms", "a2"), ("state", "a3"), ("state", "a4"),
    ]  # fmt: skip
    assert server.resumed_from == [None, "a2"]  # nothing seen twice, nothing missed
    assert events[1].sms is not None and events[1].sms.code == "111"
    assert events[3].activation is not None and events[3].activation.state is State.FINISHED


@pytest.mark.parametrize("clean_close", [False, True])
def test_async_events_resume_and_wait_for_code(clean_close: bool) -> None:
    server = EventServer(clean_close=clean_close)

    async def handler(request: httpx.Request) -> httpx.Response:
        return server(request)

    async def flow() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        api = AsyncOTPHubClient(BASE + "/api/v1", "ohc_key", http=http)
        kinds = [(e.kind, e.id) async for e in api.events(9)]
        assert kinds == [("state", "a1"), ("sms", "a2"), ("state", "a3"), ("state", "a4")]
        # the SMS event alone is not the code: the state says when it is there
        server.resumed_from.clear()
        assert await api.wait_for_code(9, timeout=10) == "111"
        assert server.resumed_from == [None, "a2"]
        await http.aclose()

    asyncio.run(flow())


@pytest.mark.parametrize("clean_close", [False, True])
def test_wait_for_code_by_events_sync(clean_close: bool) -> None:
    server = EventServer(clean_close=clean_close)
    api = OTPHubClient(BASE, "ohc_key", http=httpx.Client(transport=httpx.MockTransport(server)))
    assert api.wait_for_code(9, timeout=10) == "111"
    assert server.resumed_from == [None, "a2"]

    cancelled = sse(("c1", "state", activation("cancelled")))
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=cancelled)))  # fmt: skip
    with pytest.raises(ActivationCancelled):
        OTPHubClient(BASE, "ohc_key", http=http).wait_for_code(9, timeout=10)


def test_v1_refusals() -> None:
    cases: list[tuple[httpx.Response, type[ProtocolError]]] = [
        (as_json({"error": "NO_BALANCE", "message": "low"}, 402), NoBalance),
        (as_json({"error": "WRONG_MAX_PRICE", "min_price": 0.65}, 400), WrongMaxPrice),
        (as_json({"error": "BANNED", "until": "2026-06-01 17:30:57"}, 403), Banned),
        (as_json({"error": "IDEMPOTENCY_KEY_REUSED", "message": "m"}, 409), IdempotencyKeyReused),
        (as_json({"error": "BAD_REQUEST", "details": [{"loc": "service"}]}, 400), BadRequest),
        (as_json({"error": "NO_ACTIVATION", "message": "m"}, 404), NoActivation),
    ]
    for answer, expected in cases:
        http = httpx.Client(transport=httpx.MockTransport(lambda r, a=answer: a))
        with pytest.raises(expected) as refused:
            OTPHubClient(BASE, "k", http=http).buy("tg", idempotency_key="k1")
        if expected is WrongMaxPrice:
            assert refused.value.min_price == Decimal("0.65")  # type: ignore[attr-defined]
        if expected is Banned:
            assert refused.value.until == "2026-06-01 17:30:57"  # type: ignore[attr-defined]
        if expected is BadRequest:
            assert refused.value.details == [{"loc": "service"}]  # type: ignore[attr-defined]
    # refused at the start of an event stream too
    http = httpx.Client(transport=httpx.MockTransport(
        lambda r: as_json({"error": "NO_ACTIVATION", "message": "m"}, 404)))  # fmt: skip
    with pytest.raises(NoActivation):
        list(OTPHubClient(BASE, "k", http=http).events(9))


def test_v1_requests_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return as_json(activation(), 201)

    api = OTPHubClient(BASE, "ohc_key", http=httpx.Client(transport=httpx.MockTransport(handler)))
    bought = api.buy("tg", 0, max_price="0.60", provider_ids=[1], idempotency_key="order-7")
    assert (bought.id, bought.price, bought.state) == (9, Decimal("0.5"), State.WAITING)
    assert bought.created_at is not None and bought.created_at.year == 2026
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/activations")
    assert request.headers["idempotency-key"] == "order-7"
    assert request.headers["authorization"] == "Bearer ohc_key"
    assert json.loads(request.content) == {
        "service": "tg", "country": 0, "max_price": 0.6, "provider_ids": [1]
    }  # fmt: skip
