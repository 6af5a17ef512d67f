"""What every client does with its httpx client, sync or async: use the caller's (never
closed here) or own one (closed by ``close``/``aclose``, or by leaving a ``with`` block)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx


class Blocking:
    def __init__(self, *, timeout: float, http: httpx.Client | None) -> None:
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._owns_http = http is None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()


class NonBlocking:
    def __init__(self, *, timeout: float, http: httpx.AsyncClient | None) -> None:
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.aclose()
