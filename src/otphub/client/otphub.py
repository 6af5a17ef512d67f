"""Clients of OTPHub's JSON API v1: ``OTPHubClient`` (sync) and ``AsyncOTPHubClient``.

Thin transports over ``v1``: the requests, parsers and the event stream's bookkeeping are
there. ``wait_for_code`` listens to the activation's event stream (no polling).
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncGenerator, Generator, Iterable
from contextlib import aclosing, closing
from decimal import Decimal
from typing import TypeVar

import httpx

from otphub.client import errors, v1
from otphub.client.answers import Answer, answer_of
from otphub.client.transport import Blocking, NonBlocking
from otphub.client.v1 import Activation, Balance, Event, Message, NewWebhook, Offer, Webhook

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_WAIT = 1200.0
MAX_ERROR_BODY = 64 * 1024


class _Common:
    def __init__(self, base_url: str, api_key: str, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/").removesuffix(v1.PREFIX)
        self._key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.base_url!r})"

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        headers.update(extra)
        return headers

    def _request(
        self, http: httpx.Client | httpx.AsyncClient, request: v1.Request[T]
    ) -> httpx.Request:
        headers = self._headers(request.headers)
        content = request.content()
        if content is not None:
            headers["Content-Type"] = "application/json"
        return http.build_request(
            request.method,
            self._url(v1.PREFIX + request.path),
            params=request.params,
            content=content,
            headers=headers,
        )

    def _stream_timeout(self, read: float) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=read)


def _error_answer(response: httpx.Response, body: bytes) -> Answer:
    return Answer(
        status_code=response.status_code,
        content_type=response.headers.get("content-type", ""),
        text=body[:MAX_ERROR_BODY].decode("utf-8", "replace"),
        retry_after=response.headers.get("retry-after"),
    )


def _is_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return response.status_code == 200 and content_type.startswith("text/event-stream")


class OTPHubClient(_Common, Blocking):
    """OTPHub's JSON API v1, blocking. ``base_url`` the server's root (``/api/v1`` may be
    included); ``http`` an ``httpx.Client`` of yours (not closed here)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:  # fmt: skip
        _Common.__init__(self, base_url, api_key, timeout=timeout)
        Blocking.__init__(self, timeout=timeout, http=http)

    def send(self, request: v1.Request[T]) -> T:
        response = self._http.send(self._request(self._http, request))
        return request.result(answer_of(response))

    def balance(self) -> Balance:
        return self.send(v1.balance())

    def offers(
        self, *, service: str | None = None, country: int | None = None,
        operator: str | None = None, max_price: Decimal | str | None = None,
        provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None,
    ) -> builtins.list[Offer]:  # fmt: skip
        return self.send(v1.offers(
            service=service, country=country, operator=operator, max_price=max_price,
            provider_ids=provider_ids, except_provider_ids=except_provider_ids,
        ))  # fmt: skip

    def buy(
        self, service: str, country: int = 0, *, operator: str | None = None,
        max_price: Decimal | str | None = None, provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None,
        phone_exception: Iterable[str] | None = None, ref: str | None = None,
        idempotency_key: str | None = None,
    ) -> Activation:  # fmt: skip
        """Buy a number. With ``idempotency_key``, a repeat (after a lost answer) returns
        the first purchase instead of buying again."""
        return self.send(v1.buy(
            service=service, country=country, operator=operator, max_price=max_price,
            provider_ids=provider_ids, except_provider_ids=except_provider_ids,
            phone_exception=phone_exception, ref=ref, idempotency_key=idempotency_key,
        ))  # fmt: skip

    def get(self, activation_id: int) -> Activation:
        return self.send(v1.get(activation_id))

    def ready(self, activation_id: int) -> Activation:
        return self.send(v1.change(activation_id, "ready"))

    def retry(self, activation_id: int) -> Activation:
        return self.send(v1.change(activation_id, "retry"))

    def finish(self, activation_id: int) -> Activation:
        return self.send(v1.change(activation_id, "finish"))

    def cancel(self, activation_id: int) -> Activation:
        return self.send(v1.change(activation_id, "cancel"))

    def sms(self, activation_id: int) -> builtins.list[Message]:
        return self.send(v1.sms(activation_id))

    def webhooks(self) -> builtins.list[Webhook]:
        return self.send(v1.webhooks())

    def add_webhook(self, url: str) -> NewWebhook:
        return self.send(v1.add_webhook(url))

    def remove_webhook(self, webhook_id: int) -> None:
        self.send(v1.remove_webhook(webhook_id))

    def events(
        self, activation_id: int, *, last_event_id: str | None = None
    ) -> Generator[Event, None, None]:
        """The activation's events: its current state first, then each change, until it
        ends. A broken connection is resumed with ``Last-Event-ID`` (nothing missed)."""
        stream = v1.Stream(activation_id, last_event_id)
        while not stream.ended:
            try:
                with closing(self._connection(stream, read=v1.QUIET, until=None)) as events:
                    yield from events
            except httpx.TransportError as broken:
                stream.failed(broken)
            else:
                if not stream.ended:
                    stream.failed(errors.UnexpectedAnswer("the event stream closed early"))
            if not stream.ended:
                time.sleep(stream.retry)

    def _connection(
        self, stream: v1.Stream, *, read: float, until: float | None
    ) -> Generator[Event, None, None]:
        """One connection's events. With ``until`` (a ``time.monotonic`` deadline) it
        returns once the deadline is nearer than ``read`` (to reconnect with a read timeout
        that ends at the deadline)."""
        with self._http.stream(
            "GET", self._url(stream.path), headers=self._headers(stream.headers()),
            timeout=self._stream_timeout(read),
        ) as response:  # fmt: skip
            if not _is_stream(response):
                body = response.read()
                stream.connected(_error_answer(response, body), response.status_code,
                                 response.headers.get("content-type", ""))  # fmt: skip
            stream.connected(None, 200, "text/event-stream")
            for line in response.iter_lines():
                event = stream.feed(line)
                if event is not None:
                    yield event
                    if stream.ended:
                        return
                if until is not None and until - time.monotonic() < read:
                    return

    def wait_for_code(self, activation_id: int, *, timeout: float = DEFAULT_WAIT) -> str:
        """The code as soon as it is stored, from the event stream. Raises
        ``ActivationCancelled`` if the activation is cancelled first, ``WaitTimeout``
        (a ``TimeoutError``) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        stream = v1.Stream(activation_id)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.WaitTimeout(activation_id, timeout)
            # The read timeout ends at the deadline, or the connection is renewed once
            # the deadline is nearer than it (a quiet stream only sends pings).
            read = min(remaining, v1.QUIET)
            until = None if read == remaining else deadline
            try:
                with closing(self._connection(stream, read=read, until=until)) as events:
                    for event in events:
                        if event.activation is not None:
                            code = v1.code_of(event.activation)
                            if code is not None:
                                return code
                if stream.ended:  # finished without a code: cannot be, but do not spin
                    raise errors.ActivationCancelled(activation_id=activation_id)
                if until is None or deadline - time.monotonic() >= read:
                    # closed by the server, not renewed for the deadline: resume after a pause
                    stream.failed(errors.UnexpectedAnswer("the event stream closed early"))
                    time.sleep(max(0.0, min(stream.retry, deadline - time.monotonic())))
            except errors.TooManyRequests as refused:
                time.sleep(max(0.0, min(refused.retry_after or 1.0, deadline - time.monotonic())))
            except httpx.TransportError as broken:
                if deadline - time.monotonic() <= 0:
                    raise errors.WaitTimeout(activation_id, timeout) from None
                if not isinstance(broken, httpx.ReadTimeout):
                    stream.failed(broken)
                    time.sleep(max(0.0, min(stream.retry, deadline - time.monotonic())))

    def list(
        self, *, state: str = "live", limit: int = 50, offset: int = 0
    ) -> builtins.list[Activation]:
        """The customer's activations, newest first; ``state`` live, ended or all."""
        return self.send(v1.activations(state, limit, offset))


class AsyncOTPHubClient(_Common, NonBlocking):
    """OTPHub's JSON API v1 for asyncio: the methods of ``OTPHubClient``, awaited
    (``events`` is an async iterator). ``http`` an ``httpx.AsyncClient`` of yours."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
    ) -> None:  # fmt: skip
        _Common.__init__(self, base_url, api_key, timeout=timeout)
        NonBlocking.__init__(self, timeout=timeout, http=http)

    async def send(self, request: v1.Request[T]) -> T:
        response = await self._http.send(self._request(self._http, request))
        return request.result(answer_of(response))

    async def balance(self) -> Balance:
        return await self.send(v1.balance())

    async def offers(
        self, *, service: str | None = None, country: int | None = None,
        operator: str | None = None, max_price: Decimal | str | None = None,
        provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None,
    ) -> builtins.list[Offer]:  # fmt: skip
        return await self.send(v1.offers(
            service=service, country=country, operator=operator, max_price=max_price,
            provider_ids=provider_ids, except_provider_ids=except_provider_ids,
        ))  # fmt: skip

    async def buy(
        self, service: str, country: int = 0, *, operator: str | None = None,
        max_price: Decimal | str | None = None, provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None,
        phone_exception: Iterable[str] | None = None, ref: str | None = None,
        idempotency_key: str | None = None,
    ) -> Activation:  # fmt: skip
        return await self.send(v1.buy(
            service=service, country=country, operator=operator, max_price=max_price,
            provider_ids=provider_ids, except_provider_ids=except_provider_ids,
            phone_exception=phone_exception, ref=ref, idempotency_key=idempotency_key,
        ))  # fmt: skip

    async def get(self, activation_id: int) -> Activation:
        return await self.send(v1.get(activation_id))

    async def ready(self, activation_id: int) -> Activation:
        return await self.send(v1.change(activation_id, "ready"))

    async def retry(self, activation_id: int) -> Activation:
        return await self.send(v1.change(activation_id, "retry"))

    async def finish(self, activation_id: int) -> Activation:
        return await self.send(v1.change(activation_id, "finish"))

    async def cancel(self, activation_id: int) -> Activation:
        return await self.send(v1.change(activation_id, "cancel"))

    async def sms(self, activation_id: int) -> builtins.list[Message]:
        return await self.send(v1.sms(activation_id))

    async def webhooks(self) -> builtins.list[Webhook]:
        return await self.send(v1.webhooks())

    async def add_webhook(self, url: str) -> NewWebhook:
        return await self.send(v1.add_webhook(url))

    async def remove_webhook(self, webhook_id: int) -> None:
        await self.send(v1.remove_webhook(webhook_id))

    async def events(
        self, activation_id: int, *, last_event_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """See ``OTPHubClient.events``."""
        stream = v1.Stream(activation_id, last_event_id)
        while not stream.ended:
            try:
                async with aclosing(self._connection(stream)) as events:
                    async for event in events:
                        yield event
            except httpx.TransportError as broken:
                stream.failed(broken)
            else:
                if not stream.ended:
                    stream.failed(errors.UnexpectedAnswer("the event stream closed early"))
            if not stream.ended:
                await asyncio.sleep(stream.retry)

    async def _connection(self, stream: v1.Stream) -> AsyncGenerator[Event, None]:
        async with self._http.stream(
            "GET", self._url(stream.path), headers=self._headers(stream.headers()),
            timeout=self._stream_timeout(v1.QUIET),
        ) as response:  # fmt: skip
            if not _is_stream(response):
                body = await response.aread()
                stream.connected(_error_answer(response, body), response.status_code,
                                 response.headers.get("content-type", ""))  # fmt: skip
            stream.connected(None, 200, "text/event-stream")
            async for line in response.aiter_lines():
                event = stream.feed(line)
                if event is not None:
                    yield event
                    if stream.ended:
                        return

    async def wait_for_code(
        self,
        activation_id: int,
        *,
        timeout: float = DEFAULT_WAIT,  # noqa: ASYNC109 (the sync client's signature)
    ) -> str:
        """See ``OTPHubClient.wait_for_code``."""
        try:
            async with asyncio.timeout(timeout):
                return await self._code(activation_id)
        except TimeoutError:
            raise errors.WaitTimeout(activation_id, timeout) from None

    async def _code(self, activation_id: int) -> str:
        stream = v1.Stream(activation_id)
        while True:
            try:
                async with aclosing(self._connection(stream)) as events:
                    async for event in events:
                        if event.activation is not None:
                            code = v1.code_of(event.activation)
                            if code is not None:
                                return code
                if stream.ended:
                    raise errors.ActivationCancelled(activation_id=activation_id)
                stream.failed(errors.UnexpectedAnswer("the event stream closed early"))
                await asyncio.sleep(stream.retry)
            except errors.TooManyRequests as refused:
                await asyncio.sleep(refused.retry_after or 1.0)
            except httpx.TransportError as broken:
                stream.failed(broken)
                await asyncio.sleep(stream.retry)

    async def list(
        self, *, state: str = "live", limit: int = 50, offset: int = 0
    ) -> builtins.list[Activation]:
        return await self.send(v1.activations(state, limit, offset))
