"""Clients of the sms-activate protocol (``handler_api.php``) for OTPHub or any service
that speaks it: ``SmsActivateClient`` (sync) and ``AsyncSmsActivateClient``.

Both are thin: the parameters and the parsers of every action are in ``protocol``, the
plan of ``wait_for_code`` in ``waiting``; these classes send and sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar

import httpx

from otphub.client import errors, protocol
from otphub.client.answers import answer_of
from otphub.client.protocol import Call, Many, Purchase
from otphub.client.results import (
    ActiveActivation,
    Country,
    FullSms,
    HistoryEntry,
    Number,
    NumberV2,
    Price,
    Service,
    Status,
    StatusV2,
    TopCountry,
)
from otphub.client.transport import Blocking, NonBlocking
from otphub.client.waiting import CodeWait

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_WAIT = 1200.0  # the default life of an activation: 20 minutes
DEFAULT_INTERVAL = 3.0


class _Common:
    """What the two transports share: the URL, the key, the request's timeouts."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float) -> None:
        self.url = protocol.handler_url(base_url)
        self._key = api_key
        self.timeout = timeout
        # Whether the server holds getStatus&wait=N (None until a wait_for_code found out).
        self.wait_supported: bool | None = None

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}({self.url!r})"

    def _query(self, call: Call[T]) -> dict[str, str]:
        return {"api_key": self._key, **call.params}

    def _timeout(self, call: Call[T]) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=self.timeout + call.wait)


def _purchase(
    service: str, country: int, operator: Many, max_price: Decimal | str | None,
    provider_ids: Iterable[int] | None, except_provider_ids: Iterable[int] | None,
    phone_exception: Many, ref: str | None,
) -> Purchase:  # fmt: skip
    return Purchase(
        service, country, operator, max_price, provider_ids, except_provider_ids,
        phone_exception, ref,
    )  # fmt: skip


class SmsActivateClient(_Common, Blocking):
    """The sms-activate protocol, blocking. ``base_url`` with or without
    ``/stubs/handler_api.php``; ``http`` an ``httpx.Client`` of yours (not closed here)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:  # fmt: skip
        _Common.__init__(self, base_url, api_key, timeout=timeout)
        Blocking.__init__(self, timeout=timeout, http=http)

    def call(self, call: Call[T]) -> T:
        """Send one action (see ``otphub.client.protocol``) and read its answer."""
        response = self._http.get(self.url, params=self._query(call), timeout=self._timeout(call))
        return call.result(answer_of(response))

    # -- balance and purchase
    def get_balance(self) -> Decimal:
        return self.call(protocol.get_balance())

    def get_number(
        self, service: str, country: int = 0, *, operator: Many = None,
        max_price: Decimal | str | None = None, provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None, phone_exception: Many = None,
        ref: str | None = None,
    ) -> Number:  # fmt: skip
        return self.call(protocol.get_number(_purchase(
            service, country, operator, max_price, provider_ids, except_provider_ids,
            phone_exception, ref,
        )))  # fmt: skip

    def get_number_v2(
        self, service: str, country: int = 0, *, order_id: str | None = None,
        operator: Many = None, max_price: Decimal | str | None = None,
        provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None, phone_exception: Many = None,
        ref: str | None = None,
    ) -> NumberV2:  # fmt: skip
        return self.call(protocol.get_number_v2(_purchase(
            service, country, operator, max_price, provider_ids, except_provider_ids,
            phone_exception, ref,
        ), order_id))  # fmt: skip

    # -- an activation
    def get_status(self, activation_id: int, *, wait: float | None = None) -> Status:
        return self.call(protocol.get_status(activation_id, wait=wait))

    def get_status_v2(self, activation_id: int, *, wait: float | None = None) -> StatusV2:
        return self.call(protocol.get_status_v2(activation_id, wait=wait))

    def get_full_sms(self, activation_id: int, *, wait: float | None = None) -> FullSms:
        return self.call(protocol.get_full_sms(activation_id, wait=wait))

    def set_status(self, activation_id: int, status: int) -> str:
        return self.call(protocol.set_status(activation_id, status))

    def ready(self, activation_id: int) -> str:
        """setStatus 1: the SMS was asked for (``ACCESS_READY``)."""
        return self.set_status(activation_id, protocol.READY)

    def retry(self, activation_id: int) -> str:
        """setStatus 3: another SMS on the same number (``ACCESS_RETRY_GET``)."""
        return self.set_status(activation_id, protocol.RETRY)

    def finish(self, activation_id: int) -> str:
        """setStatus 6: the code was right (``ACCESS_ACTIVATION``)."""
        return self.set_status(activation_id, protocol.FINISH)

    def cancel(self, activation_id: int) -> str:
        """setStatus 8: cancel, refunded (``ACCESS_CANCEL``)."""
        return self.set_status(activation_id, protocol.CANCEL)

    def wait_for_code(
        self, activation_id: int, *, timeout: float = DEFAULT_WAIT,
        interval: float = DEFAULT_INTERVAL,
    ) -> str:  # fmt: skip
        """The code, as soon as it comes: long-poll where the server offers ``wait=``,
        else polling every ``interval`` s. Raises ``ActivationCancelled`` when the
        activation ends without one, ``WaitTimeout`` (a ``TimeoutError``) after ``timeout``."""
        plan = CodeWait(
            activation_id, timeout=timeout, interval=interval, long_poll=self.wait_supported
        )
        while True:
            step = plan.step()
            if step.pause:
                time.sleep(step.pause)
            try:
                status = self.call(step.call)
            except errors.TooManyRequests as refused:
                plan.throttled(refused.retry_after)
                continue
            code = plan.seen(status)
            self.wait_supported = plan.long_poll
            if code is not None:
                return code

    # -- lists
    def get_active_activations(self) -> list[ActiveActivation]:
        """The live activations; none: an empty list (not ``NoActivations``)."""
        return self.call(protocol.get_active_activations())

    def get_history(
        self, *, start: int | None = None, end: int | None = None, offset: int | None = None,
        limit: int | None = None,
    ) -> list[HistoryEntry]:  # fmt: skip
        return self.call(protocol.get_history(start=start, end=end, offset=offset, limit=limit))

    # -- catalog and stock
    def get_prices(
        self, *, service: str | None = None, country: int | None = None
    ) -> dict[int, dict[str, Price]]:
        return self.call(protocol.get_prices(service=service, country=country))

    def get_countries(self) -> dict[int, Country]:
        return self.call(protocol.get_countries())

    def get_services_list(self, *, country: int | None = None) -> list[Service]:
        return self.call(protocol.get_services_list(country=country))

    def get_operators(self, *, country: int | None = None) -> dict[int, list[str]]:
        """{country: [operators]}; none: an empty dict (not ``OperatorsNotFound``)."""
        return self.call(protocol.get_operators(country=country))

    def get_numbers_status(
        self, *, country: int | None = None, operator: str | None = None
    ) -> dict[str, int]:
        return self.call(protocol.get_numbers_status(country=country, operator=operator))

    def get_top_countries_by_service(self, service: str | None = None) -> list[TopCountry]:
        return self.call(protocol.get_top_countries_by_service(service))


class AsyncSmsActivateClient(_Common, NonBlocking):
    """The sms-activate protocol for asyncio: the same methods as ``SmsActivateClient``,
    awaited. ``http`` an ``httpx.AsyncClient`` of yours (not closed here)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
    ) -> None:  # fmt: skip
        _Common.__init__(self, base_url, api_key, timeout=timeout)
        NonBlocking.__init__(self, timeout=timeout, http=http)

    async def call(self, call: Call[T]) -> T:
        response = await self._http.get(
            self.url, params=self._query(call), timeout=self._timeout(call)
        )
        return call.result(answer_of(response))

    async def get_balance(self) -> Decimal:
        return await self.call(protocol.get_balance())

    async def get_number(
        self, service: str, country: int = 0, *, operator: Many = None,
        max_price: Decimal | str | None = None, provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None, phone_exception: Many = None,
        ref: str | None = None,
    ) -> Number:  # fmt: skip
        return await self.call(protocol.get_number(_purchase(
            service, country, operator, max_price, provider_ids, except_provider_ids,
            phone_exception, ref,
        )))  # fmt: skip

    async def get_number_v2(
        self, service: str, country: int = 0, *, order_id: str | None = None,
        operator: Many = None, max_price: Decimal | str | None = None,
        provider_ids: Iterable[int] | None = None,
        except_provider_ids: Iterable[int] | None = None, phone_exception: Many = None,
        ref: str | None = None,
    ) -> NumberV2:  # fmt: skip
        return await self.call(protocol.get_number_v2(_purchase(
            service, country, operator, max_price, provider_ids, except_provider_ids,
            phone_exception, ref,
        ), order_id))  # fmt: skip

    async def get_status(self, activation_id: int, *, wait: float | None = None) -> Status:
        return await self.call(protocol.get_status(activation_id, wait=wait))

    async def get_status_v2(self, activation_id: int, *, wait: float | None = None) -> StatusV2:
        return await self.call(protocol.get_status_v2(activation_id, wait=wait))

    async def get_full_sms(self, activation_id: int, *, wait: float | None = None) -> FullSms:
        return await self.call(protocol.get_full_sms(activation_id, wait=wait))

    async def set_status(self, activation_id: int, status: int) -> str:
        return await self.call(protocol.set_status(activation_id, status))

    async def ready(self, activation_id: int) -> str:
        return await self.set_status(activation_id, protocol.READY)

    async def retry(self, activation_id: int) -> str:
        return await self.set_status(activation_id, protocol.RETRY)

    async def finish(self, activation_id: int) -> str:
        return await self.set_status(activation_id, protocol.FINISH)

    async def cancel(self, activation_id: int) -> str:
        return await self.set_status(activation_id, protocol.CANCEL)

    async def wait_for_code(
        self, activation_id: int, *,
        timeout: float = DEFAULT_WAIT,  # noqa: ASYNC109 (the sync client's signature)
        interval: float = DEFAULT_INTERVAL,
    ) -> str:  # fmt: skip
        """See ``SmsActivateClient.wait_for_code``."""
        plan = CodeWait(
            activation_id, timeout=timeout, interval=interval, long_poll=self.wait_supported
        )
        while True:
            step = plan.step()
            if step.pause:
                await asyncio.sleep(step.pause)
            try:
                status = await self.call(step.call)
            except errors.TooManyRequests as refused:
                plan.throttled(refused.retry_after)
                continue
            code = plan.seen(status)
            self.wait_supported = plan.long_poll
            if code is not None:
                return code

    async def get_active_activations(self) -> list[ActiveActivation]:
        return await self.call(protocol.get_active_activations())

    async def get_history(
        self, *, start: int | None = None, end: int | None = None, offset: int | None = None,
        limit: int | None = None,
    ) -> list[HistoryEntry]:  # fmt: skip
        return await self.call(
            protocol.get_history(start=start, end=end, offset=offset, limit=limit)
        )

    async def get_prices(
        self, *, service: str | None = None, country: int | None = None
    ) -> dict[int, dict[str, Price]]:
        return await self.call(protocol.get_prices(service=service, country=country))

    async def get_countries(self) -> dict[int, Country]:
        return await self.call(protocol.get_countries())

    async def get_services_list(self, *, country: int | None = None) -> list[Service]:
        return await self.call(protocol.get_services_list(country=country))

    async def get_operators(self, *, country: int | None = None) -> dict[int, list[str]]:
        return await self.call(protocol.get_operators(country=country))

    async def get_numbers_status(
        self, *, country: int | None = None, operator: str | None = None
    ) -> dict[str, int]:
        return await self.call(protocol.get_numbers_status(country=country, operator=operator))

    async def get_top_countries_by_service(self, service: str | None = None) -> list[TopCountry]:
        return await self.call(protocol.get_top_countries_by_service(service))
