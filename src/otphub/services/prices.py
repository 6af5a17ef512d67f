"""What is for sale, at what price: getPrices, getPricesV2, getPricesV3, the stock of
getNumbersStatus and getTopCountriesByService, and getOperators."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from otphub.db import inventory, remote_stock
from otphub.db.engine import Conn
from otphub.db.inventory import OperatorCount, StockLine
from otphub.domain import errors
from otphub.domain.numbers import parse_whole
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.prices")


def country_id(rt: Runtime, raw: str | None) -> int | None:
    """A ``country`` filter: ``None`` when absent, ``BAD_COUNTRY`` when unknown."""
    if raw is None:
        return None
    value = parse_whole(raw)
    if value is None or value not in rt.catalog.countries:
        raise errors.BadCountry()
    return value


@dataclass
class Renewal:
    """When a per-process count was made, and the next one: recomputed at most every
    ``OTPHUB_STOCK_CACHE_SECONDS``, one at a time, beside the requests (see ``_renewed``)."""

    computed_at: float = float("-inf")
    lock: asyncio.Lock | None = None
    recount: asyncio.Future[None] | None = None  # the count being made in the background


@dataclass
class StockCache(Renewal):
    """The whole stock, recomputed at most every ``OTPHUB_STOCK_CACHE_SECONDS``.

    Clients read prices far more often than stock changes meaningfully, and the full
    catalog (thousands of offers) costs tens of milliseconds to count and to serialise.
    Each process keeps its own copy, so a count may lag a purchase by that many seconds;
    purchases themselves never use it (they claim numbers in the database).
    """

    lines: Sequence[StockLine] = ()
    # The same lines per service and per country: a filtered answer reads a few dozen
    # lines instead of scanning all of them (18,550 offers: 3 ms per request).
    by_service: dict[str, list[StockLine]] = field(default_factory=dict)
    by_country: dict[int, list[StockLine]] = field(default_factory=dict)
    # Rendered answers, per action and filter, until the next recount. A popular service
    # alone is a thousand lines (five providers in 200 countries): 3 ms to render.
    answers: dict[tuple[str, str | None, int | None], bytes] = field(default_factory=dict)

    def renew(self, lines: Sequence[StockLine]) -> None:
        self.lines = lines
        self.by_service = {}
        self.by_country = {}
        for line in lines:
            self.by_service.setdefault(line.service, []).append(line)
            self.by_country.setdefault(line.country_id, []).append(line)
        self.answers = {}
        self.computed_at = time.monotonic()

    def matching(self, service: str | None, country_id: int | None) -> list[StockLine]:
        if service is not None:
            return [
                line
                for line in self.by_service.get(service, ())
                if country_id is None or line.country_id == country_id
            ]
        if country_id is not None:
            return list(self.by_country.get(country_id, ()))
        return list(self.lines)


@dataclass
class OperatorCache(Renewal):
    """The free numbers per operator and the operators of each country, counted like the
    stock but only once a request needs them (getNumbersStatus with ``operator``,
    getOperators): that pass reads every number, ten times the stock's own."""

    count: OperatorCount = field(default_factory=lambda: OperatorCount({}, {}, {}))

    def renew(self, count: OperatorCount) -> None:
        self.count = count
        self.computed_at = time.monotonic()


async def _renewed(
    rt: Runtime,
    cache: Renewal,
    count: Callable[[], Awaitable[None]],
    *,
    wait_for_the_first: bool = True,
) -> bool:
    """Renew ``cache`` by ``count`` when older than ``OTPHUB_STOCK_CACHE_SECONDS``; whether
    it holds a count. Only the first count is waited for (unless ``wait_for_the_first`` is
    off: then it is made beside the request too): after that, requests get the current
    count while the next one is made beside them (the stock takes 150 to 300 ms at 100,000
    numbers)."""
    if time.monotonic() - cache.computed_at < rt.settings.stock_cache_seconds:
        return True
    if cache.lock is None:
        cache.lock = asyncio.Lock()
    if cache.computed_at == float("-inf") and wait_for_the_first:
        await _recount(rt, cache, count)  # nothing to serve yet
    elif not cache.lock.locked():
        cache.recount = asyncio.ensure_future(_recount_aside(rt, cache, count))
    return cache.computed_at != float("-inf")


async def _recount_aside(rt: Runtime, cache: Renewal, count: Callable[[], Awaitable[None]]) -> None:
    try:
        await _recount(rt, cache, count)
    except Exception:
        # The database is away: the count stays as it was, and the next request tries again.
        log.warning("stock_count_failed", exc_info=True)


async def _recount(rt: Runtime, cache: Renewal, count: Callable[[], Awaitable[None]]) -> None:
    assert cache.lock is not None
    async with cache.lock:  # one count at a time; the first callers wait and share it
        if time.monotonic() - cache.computed_at >= rt.settings.stock_cache_seconds:
            await count()


async def _whole_stock(rt: Runtime, *, wait_for_the_first: bool = True) -> StockCache:
    """The stock's count (see ``_renewed``); without ``wait_for_the_first``, maybe none
    yet (``computed_at`` still -inf)."""
    cache: StockCache = rt.extensions.setdefault("stock", StockCache())

    async def count() -> None:
        cache.renew(await rt.db.read_aside(functools.partial(_with_remote, rt)))

    await _renewed(rt, cache, count, wait_for_the_first=wait_for_the_first)
    return cache


async def _with_remote(
    rt: Runtime,
    conn: Conn,
    *,
    service: str | None = None,
    country_id: int | None = None,
    wanted: inventory.NumberFilter = inventory.ANY_NUMBER,
    provider_id: int | None = None,
) -> Sequence[StockLine]:
    """The local stock and the remote providers' (issue 9): one more statement per
    count, none per request; of one provider only with ``provider_id``."""
    local = await inventory.stock(
        conn, service=service, country_id=country_id, wanted=wanted, provider_id=provider_id
    )
    remote = [
        line
        for line in await remote_stock.lines(
            conn,
            fresh=_fresh_since(rt),
            service=service,
            country_id=country_id,
            operators=wanted.operators,
        )
        if provider_id is None or line.provider_id == provider_id
    ]
    if not remote:
        return local
    return sorted([*local, *remote], key=lambda line: (line.country_id, line.service, line.price))


def _fresh_since(rt: Runtime) -> remote_stock.Freshness:
    # Three poll periods of the provider's kind (as remote_purchase.fresh_since).
    now = rt.clock.now()
    return remote_stock.Freshness(
        agent=now - int(3 * rt.settings.agent_poll_seconds),
        upstream=now - int(3 * rt.settings.upstream_poll_seconds),
    )


async def _operator_count_with_remote(rt: Runtime, conn: Conn) -> OperatorCount:
    local = await inventory.operator_count(conn)
    remote = await remote_stock.per_operator(conn, fresh=_fresh_since(rt))
    if not remote:
        return local
    named = {country: set(names) for country, names in local.operators.items()}
    for _provider, country, operator, _service in remote:
        if operator != "any":
            named.setdefault(country, set()).add(operator)
    return OperatorCount(
        free=local.free,
        spent=local.spent,
        operators={country: sorted(named[country]) for country in sorted(named)},
        per_service=remote,
    )


async def _operator_count(rt: Runtime) -> OperatorCount | None:
    """The operators' count; ``None`` while the first one is made. That one is not waited
    for: the few requests meanwhile read the database themselves, in a worker thread (one
    country's numbers, or the operators alone, cost a fraction of the whole count)."""
    cache: OperatorCache = rt.extensions.setdefault("stock_operators", OperatorCache())

    async def count() -> None:
        cache.renew(await rt.db.read_aside(functools.partial(_operator_count_with_remote, rt)))

    if await _renewed(rt, cache, count, wait_for_the_first=False):
        return cache.count
    return None


def of_operators(
    lines: Sequence[StockLine], count: OperatorCount, operators: Sequence[str]
) -> list[StockLine]:
    """``lines`` counting only the numbers of these operators. An offer with stock of these
    operators has stock at all, so ``lines`` holds every candidate."""
    wanted = tuple(dict.fromkeys(operators))  # as SQL's IN: a repeated name counts once
    found: list[StockLine] = []
    for line in lines:
        place = (line.provider_id, line.country_id)
        free = sum(count.free.get((*place, operator), 0) for operator in wanted)
        if count.per_service:  # remote stock, counted per service by its provider
            free += sum(
                count.per_service.get((*place, operator, line.service), 0) for operator in wanted
            )
        spent = sum(count.spent.get((*place, operator, line.service), 0) for operator in wanted)
        if free > spent:
            found.append(
                StockLine(line.country_id, line.service, line.provider_id, line.price, free - spent)
            )
    return found


async def stock(
    rt: Runtime,
    *,
    service: str | None,
    country: str | None,
    wanted: inventory.NumberFilter = inventory.ANY_NUMBER,
) -> Sequence[StockLine]:
    if service is not None and service not in rt.catalog.services:
        raise errors.BadService()
    wanted_country = country_id(rt, country)
    if rt.settings.stock_cache_seconds > 0 and not wanted.excluded_prefixes:
        if not wanted.operators:
            return (await _whole_stock(rt)).matching(service, wanted_country)
        # Neither first count is waited for (both start now, side by side): this request
        # reads its few numbers in the database instead.
        by_operator = await _operator_count(rt)
        whole = await _whole_stock(rt, wait_for_the_first=False)
        if by_operator is not None and whole.computed_at != float("-inf"):
            lines = whole.matching(service, wanted_country)
            return of_operators(lines, by_operator, wanted.operators)

    # Counted in the database, the stock reads every number of the country (of all of
    # them without one): in a worker thread on SQLite, never on the event loop.
    async def count(conn: Conn) -> Sequence[StockLine]:
        return await _with_remote(
            rt, conn, service=service, country_id=wanted_country, wanted=wanted
        )

    return await rt.db.read_aside(count)


async def stock_of_provider(rt: Runtime, provider_id: int) -> list[StockLine]:
    """One provider's lines of the stock that the price lists advertise (its enabled
    offers with free numbers, a remote provider's fresh stock at its offers' prices): from
    the process's count when there is one (``OTPHUB_STOCK_CACHE_SECONDS``), so that the
    operator's provider page does not count thousands of offers at every visit."""
    if rt.settings.stock_cache_seconds > 0:
        whole = await _whole_stock(rt)
        return [line for line in whole.lines if line.provider_id == provider_id]

    async def count(conn: Conn) -> Sequence[StockLine]:
        return await _with_remote(rt, conn, provider_id=provider_id)

    return list(await rt.db.read_aside(count))


async def operators(rt: Runtime, *, country: str | None) -> dict[int, list[str]]:
    """getOperators: the named operators of online numbers per country (``BAD_COUNTRY``
    for an unknown one), from the operators' count once there is one."""
    wanted_country = country_id(rt, country)
    counted = await _operator_count(rt) if rt.settings.stock_cache_seconds > 0 else None
    if counted is not None:
        every = counted.operators
        if wanted_country is None:
            return every
        return {wanted_country: every[wanted_country]} if wanted_country in every else {}

    async def listed(conn: Conn) -> dict[int, list[str]]:
        found = await inventory.operators(conn, country_id=wanted_country)
        remote = await remote_stock.per_operator(conn, fresh=_fresh_since(rt))
        for _provider, country, operator, _service in remote:
            if operator != "any" and wanted_country in (None, country):
                names = found.setdefault(country, [])
                if operator not in names:
                    names.append(operator)
                    names.sort()
        return found

    # A read of every number: in a worker thread on SQLite, never on the event loop.
    return await rt.db.read_aside(listed)


# At most this many rendered answers per recount (every service in every country would be
# 100,000): a client walking through all of them is served, just not from memory.
MAX_CACHED_ANSWERS = 5_000


async def answer(
    rt: Runtime,
    action: str,
    *,
    service: str | None,
    country: str | None,
    render: Callable[[Sequence[StockLine]], bytes],
) -> bytes:
    """A prices action's answer for these filters, rendered once per stock recount."""
    if service is not None and service not in rt.catalog.services:
        raise errors.BadService()
    wanted_country = country_id(rt, country)
    if rt.settings.stock_cache_seconds <= 0:
        return render(await stock(rt, service=service, country=country))
    cache = await _whole_stock(rt)
    key = (action, service, wanted_country)
    body = cache.answers.get(key)
    if body is None:
        body = render(cache.matching(service, wanted_country))
        if len(cache.answers) < MAX_CACHED_ANSWERS:
            cache.answers[key] = body
    return body


JsonTree = dict[str, dict[str, dict[str, object]]]


def prices_v1(rt: Runtime, lines: Sequence[StockLine]) -> JsonTree:
    """``{"0": {"tg": {"cost": 0.5, "count": 120, "physicalCount": 120}}}``: the lowest price
    with stock, and the free numbers at any price."""
    cheapest: dict[tuple[int, str], int] = {}
    free: dict[tuple[int, str], int] = {}
    for line in lines:
        pair = (line.country_id, line.service)
        cheapest[pair] = min(cheapest.get(pair, line.price), line.price)
        free[pair] = free.get(pair, 0) + line.count
    tree: JsonTree = {}
    for (country_id, service), price in cheapest.items():
        count = free[(country_id, service)]
        tree.setdefault(str(country_id), {})[service] = {
            "cost": rt.money.json_number(price),
            "count": count,
            "physicalCount": count,
        }
    return tree


def prices_v2(rt: Runtime, lines: Sequence[StockLine]) -> JsonTree:
    """``{"0": {"tg": {"0.50": 80, "0.65": 40}}}``: free numbers per price level."""
    tree: JsonTree = {}
    for line in lines:
        levels = tree.setdefault(str(line.country_id), {}).setdefault(line.service, {})
        key = rt.money.format(line.price)
        previous = levels.get(key, 0)
        assert isinstance(previous, int)
        levels[key] = previous + line.count
    return tree


def prices_v3(rt: Runtime, lines: Sequence[StockLine]) -> JsonTree:
    """``{"0": {"tg": {"3": {"count": 80, "price": 0.5, "provider_id": 3}}}}``."""
    tree: JsonTree = {}
    for line in lines:
        per_provider = tree.setdefault(str(line.country_id), {}).setdefault(line.service, {})
        per_provider[str(line.provider_id)] = {
            "count": line.count,
            "price": rt.money.json_number(line.price),
            "provider_id": line.provider_id,
        }
    return tree


@dataclass(frozen=True, slots=True)
class PriceLevel:
    """How many numbers are free at one price (every provider's offers at it summed)."""

    price: int
    count: int


async def levels(
    rt: Runtime, *, service: str, country: str, operator: str | None = None
) -> list[PriceLevel]:
    """The free numbers of a service in a country per price, cheapest first (the web
    console's buying page), counted as ``stock`` counts them."""
    wanted = inventory.NumberFilter(operators=(operator.lower(),) if operator else ())
    free: dict[int, int] = {}
    for line in await stock(rt, service=service, country=country, wanted=wanted):
        free[line.price] = free.get(line.price, 0) + line.count
    return [PriceLevel(price, count) for price, count in sorted(free.items()) if count > 0]
