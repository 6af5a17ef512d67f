"""Hostile input at every endpoint (issue "Trust", item 5).

Hypothesis throws random actions, parameter names and values, raw bytes, odd encodings
(latin-1, cp1251, UTF-16, invalid UTF-8, percent-encoded garbage, NUL bytes), huge and empty
values, SQL and JSON fragments, repeated parameters, odd methods, content types and headers
at the customer API (both paths; query string, form, multipart, octet-stream and other
bodies), at the supplier push endpoint (JSON, gzip, garbage) and at ``/healthz`` and
``/readyz``, plus raw bytes on the socket. What every answer may be is in ``checks.py``:

- never a 5xx; never a trace, SQL, a driver's name or a source path in a body;
- the customer API: HTTP 200 (or 429/413 with a plain word, should abuse limits answer),
  byte-exact, a protocol word or JSON; ``ERROR_SQL`` counts as a failure, since the
  database is healthy here;
- the push endpoint: a JSON object with ``status``: SUCCESS with 200, ERROR with a 4xx.

Money: the keys fuzzed are either wrong, or belong to a customer with no money (who may try
to buy anything), or belong to a customer with money but are used only with actions that
cannot spend. After every example the balances and the activations are exactly as staged;
at the end the balances (``accounts.balance``) and the audit are checked once more.

One deployment per test and backend, staged once; the examples share it. The budget is
``OTPHUB_FUZZ_EXAMPLES`` examples per property (default 200). The last section keeps the
minimal inputs the fuzzer found as plain regression tests.
"""

from __future__ import annotations

import collections
import functools
import gzip
import json
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select, union_all

from otphub.db.schema import accounts as accounts_table
from otphub.db.schema import activations
from otphub.domain import keys
from otphub.services import accounts
from otphub.services.accounts import Customer
from tests.fuzz.checks import (
    AGENT_PATH,
    CUSTOMER_PATHS,
    TEXT,
    agent_answer,
    assert_no_leak,
    assert_not_5xx,
    customer_answer,
)
from tests.support import Hub, Seller

EXAMPLES = int(os.environ.get("OTPHUB_FUZZ_EXAMPLES", "200"))
# With enough examples, each test also checks that its fuzzing reached where it aims (a
# fuzzer that only ever hears BAD_KEY proves nothing).
SANITY = EXAMPLES >= 100
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@pytest.fixture
def hub_settings() -> dict[str, object]:
    # No request-rate limit, no limit on failed authentications per address: hundreds of
    # requests from one key and one address are the point. (The size limits stay.)
    return {"rate_limit": 0, "auth_failures_per_minute": 0}


# ---------------------------------------------------------------- the staged deployment


@dataclass(frozen=True)
class Ledger:
    """What hostile input must never change."""

    balances: tuple[int, ...]
    activations: tuple[tuple[int, str], ...]


@dataclass
class Scene:
    rich_key: str  # 10.00 topped up, three live activations
    poor_key: str  # no money at all: may try to buy anything
    other_key: str  # another customer, one live activation
    seller: Seller
    waiting: list[int]  # the rich customer's activations still waiting for an SMS
    coded: int  # the rich customer's activation that has a code
    foreign: int  # the other customer's activation
    phones: list[str]  # the provider's numbers
    customers: list[Customer]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(str(i) for i in [*self.waiting, self.coded, self.foreign])

    def ledger(self, hub: Hub) -> Ledger:
        """Available balances (balance minus holds, as ``ledger.available`` reads them) and
        activation states, in one statement: it runs after every example."""
        wallets = [c.account_id for c in self.customers]
        statement = union_all(
            select(
                accounts_table.c.id,
                (accounts_table.c.balance - accounts_table.c.held).label("value"),
                literal("").label("state"),
            ).where(accounts_table.c.id.in_(wallets)),
            select(activations.c.id, literal(0), activations.c.state),
        )

        async def read() -> Ledger:
            async with hub.rt.db.read() as conn:
                rows = (await conn.execute(statement)).all()
            available = {int(r.id): int(r.value) for r in rows if not r.state}
            states = sorted((int(r.id), str(r.state)) for r in rows if r.state)
            return Ledger(tuple(available[w] for w in wallets), tuple(states))

        return hub.call(read())

    def balances(self, hub: Hub) -> tuple[int, ...]:
        """The same balances, through the service the customer API uses."""
        return tuple(hub.call(accounts.balance(hub.rt, c)) for c in self.customers)


STAGED_BALANCES = ("8.50", "0.00", "4.50")


def stage(hub: Hub) -> Scene:
    seller = hub.stocked(count=8, operator="mts")
    rich_key = hub.customer("10.00", name="rich")
    poor_key = hub.customer("0.00", name="poor")
    other_key = hub.customer("5.00", name="other")
    waiting = [hub.buy(rich_key)[0] for _ in range(2)]
    coded, coded_phone = hub.buy(rich_key)
    assert hub.push_sms(seller, coded_phone, "Your code: 48213").status_code == 200
    foreign = hub.buy(other_key)[0]
    customers = [
        hub.call(accounts.authenticate_customer(hub.rt, key))
        for key in (rich_key, poor_key, other_key)
    ]
    scene = Scene(
        rich_key=rich_key,
        poor_key=poor_key,
        other_key=other_key,
        seller=seller,
        waiting=waiting,
        coded=coded,
        foreign=foreign,
        phones=[str(79000000001 + i) for i in range(8)],
        customers=customers,
    )
    assert scene.balances(hub) == tuple(hub.money(b) for b in STAGED_BALANCES)
    return scene


def _fuzz(
    hub: Hub, scene: Scene, strategy: st.SearchStrategy[Any], check: Callable[[Any], str]
) -> collections.Counter[str]:
    """Run ``check`` on every example; after each, no balance and no activation may have
    changed. Returns how often each kind of answer was seen."""
    staged = scene.ledger(hub)
    seen: collections.Counter[str] = collections.Counter()

    @FUZZ
    @given(strategy)
    def run(case: Any) -> None:
        seen[check(case)] += 1
        assert scene.ledger(hub) == staged, case

    run()
    assert scene.balances(hub) == tuple(hub.money(b) for b in STAGED_BALANCES)
    hub.assert_audit_clean()
    return seen


# ---------------------------------------------------------------- hostile values

HOSTILE = [
    "",
    " ",
    "\t\r\n",
    "\x00",
    "a\x00b",
    "tg\x00",
    "mts\x00",
    "\x00\x00\x00",
    "' OR 1=1 --",
    "1; DROP TABLE accounts",
    "1' UNION SELECT key_hash FROM api_keys --",
    "0) OR (1=1",
    "%' OR '%'='",
    "\\",
    "'",
    '"',
    "`",
    '{"a":1}',
    '{"activationId":',
    "[1,2",
    "null",
    "true",
    "False",
    "NaN",
    "-0",
    "-1",
    "0",
    "1",
    "3",
    "6",
    "8",
    "+1",
    "01",
    "1.0",
    "1e3",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "99999999999999999999999999",
    "1e308",
    "-1e-308",
    "1e999999",
    "Infinity",
    "-inf",
    "sNaN",
    "0x1F",
    "1_000",
    "١٢٣",  # Arabic-Indic digits
    "１２３",  # fullwidth digits
    "²",
    "é",
    "ß",
    "İ",
    "\u202etg",
    "\ufefftg",
    "\u200b",
    "\U0001f600",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "%s%s%s%n",
    "any",
    "ANY",
    "tg",
    "TG",
    "wa",
    "mts",
    "mts,beeline,any",
    "0,1,2",
    ",,,",
    "7900",
    "7900,7918111",
    "79000000001",
    "1,",
    "0.50",
    "0.49",
    "0,50",
    "1.5e-2",
    "api_key",
    "getNumber",
]
HUGE_SIZES = [1_000, 4_000, 9_000]  # in a query string; bodies get bigger ones
KNOWN_ACTIONS = [
    "getBalance",
    "getBalanceAndCashBack",
    "getNumber",
    "getNumberV2",
    "getStatus",
    "getStatusV2",
    "getFullSms",
    "setStatus",
    "getActiveActivations",
    "getHistory",
    "getPrices",
    "getPricesV2",
    "getPricesV3",
    "getNumbersStatus",
    "getTopCountriesByService",
    "getCountries",
    "getServicesList",
    "getOperators",
]
PARAM_NAMES = [
    "api_key",
    "action",
    "id",
    "status",
    "service",
    "country",
    "operator",
    "maxPrice",
    "max_price",
    "providerIds",
    "exceptProviderIds",
    "phoneException",
    "ref",
    "orderId",
    "activationType",
    "start",
    "end",
    "offset",
    "limit",
    "json",
    "lang",
    "forward",
    "api_key ",
    " action",
    "ACTION",
    "id[]",
    "action[]",
    "",
    "=",
    "&",
    "\x00",
    "a" * 300,
]
# Inserted verbatim into a query string or form body.
RAW_FRAGMENTS = [
    b"%",
    b"%%",
    b"%zz",
    b"%2",
    b"%e9",
    b"%ff%fe",
    b"%c3",
    b"%00",
    b"%C0%AF",
    b"%ED%A0%80",  # a UTF-16 surrogate, UTF-8-encoded: invalid UTF-8
    b"%F4%90%80%80",  # beyond U+10FFFF
    b"%u0041",
    b"+",
    b"=",
    b"==",
    b"&",
    b"&&",
    b";",
    b"action",
    b"api_key=",
    b"action=",
    b"[]",
    b"\\",
    b"'",
    b"%27%20OR%201%3D1%20--",
]
ENCODINGS = ["utf-8", "utf-8", "utf-8", "latin-1", "cp1251", "utf-16-le"]
SPELLINGS = ["pct", "pct", "plus", "verbatim"]

BOOLS = st.booleans()
INDEXES = st.integers(0, 64)
HUGE = st.builds(
    lambda n, c: c * n, st.sampled_from(HUGE_SIZES), st.sampled_from(["9", "A", "\x00", "é"])
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``st.one_of`` with weights (it picks its branches evenly, duplicates or not)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


@functools.cache
def texts(extra: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Values as strings: hostile, meaningful, random unicode (NUL included), numbers, huge."""
    return weighted(
        (6, st.sampled_from(HOSTILE + list(extra))),
        (3, st.text(max_size=30)),
        (3, st.tuples(st.text(max_size=4), st.text(max_size=4)).map("\x00".join)),
        (1, st.integers(min_value=-(2**70), max_value=2**70).map(str)),
        (1, st.decimals(allow_nan=True, allow_infinity=True).map(str)),
        (1, HUGE),  # over the size limits: mostly answered 413
    )


def _encoded(pair: tuple[str, str]) -> bytes:
    encoding, text = pair
    return text.encode(encoding, "replace")


def octets(values: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """A value as the bytes on the wire: text in some encoding (mostly), or raw bytes."""
    spelled = st.tuples(st.sampled_from(ENCODINGS), values).map(_encoded)
    return weighted((1, st.binary(max_size=40)), (5, spelled))


@dataclass(frozen=True)
class Param:
    name: bytes
    value: bytes | None  # None: the name alone, without "="
    spelling: str  # pct | plus | verbatim


@functools.cache
def params(
    extra: tuple[str, ...] = (), focus: tuple[str, ...] = tuple(PARAM_NAMES)
) -> st.SearchStrategy[Param]:
    """Parameters: mostly names from ``focus``, some from every name, some random."""
    names = weighted(
        (4, st.sampled_from(focus).map(str.encode)),
        (2, st.sampled_from(PARAM_NAMES).map(str.encode)),
        (1, octets(st.text(max_size=12))),
    )
    return st.builds(Param, names, st.none() | octets(texts(extra)), st.sampled_from(SPELLINGS))


def _spell(raw: bytes, spelling: str) -> bytes:
    if spelling == "verbatim" and all(0x20 < b < 0x7F and b != ord("#") for b in raw):
        return raw
    if spelling == "plus":
        return quote_from_bytes(raw, safe=" ").replace(" ", "+").encode()
    return quote_from_bytes(raw, safe="").encode()


MAX_QUERY = 60_000  # httpx refuses URL components over 64 KiB


def urlencoded(
    items: Sequence[Param | bytes], separator: bytes = b"&", limit: int | None = None
) -> bytes:
    """A query string or form body; bytes items are raw fragments, put in verbatim. With a
    ``limit``, the first items are dropped until it fits (the last ones are the guard)."""
    if limit is not None:
        while len(items) > 1 and len(urlencoded(items, separator)) > limit:
            items = items[1:]
    parts = []
    for item in items:
        if isinstance(item, bytes):
            parts.append(item)
        elif item.value is None:
            parts.append(_spell(item.name, item.spelling))
        else:
            parts.append(
                _spell(item.name, item.spelling) + b"=" + _spell(item.value, item.spelling)
            )
    return separator.join(parts)


def _field_name(raw: bytes) -> bytes:
    # What browsers do with a field name in a multipart header.
    return raw.replace(b'"', b"%22").replace(b"\r", b"%0D").replace(b"\n", b"%0A")


def multipart(items: list[Param], boundary: bytes, *, files: bool) -> bytes:
    out = b""
    for index, item in enumerate(items):
        out += b"--" + boundary + b"\r\n"
        disposition = b'Content-Disposition: form-data; name="' + _field_name(item.name) + b'"'
        if files and index % 3 == 2:
            disposition += b'; filename="x.txt"'
        out += disposition + b"\r\n"
        if index % 2 == 1:
            out += b"Content-Type: text/plain; charset=latin-1\r\n"
        out += b"\r\n" + (item.value or b"") + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def protect(pairs: list[tuple[str, str]]) -> list[Param]:
    return [Param(n.encode(), v.encode(), "pct") for n, v in pairs]


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Shot:
    """One request, exactly as sent."""

    method: str
    path: str
    query: bytes
    headers: tuple[tuple[str, bytes], ...]
    body: bytes | None

    def __repr__(self) -> str:
        def cut(raw: bytes | None) -> str:
            if raw is None or len(raw) <= 300:
                return repr(raw)
            return f"{raw[:300]!r}...({len(raw)} bytes)"

        return (
            f"Shot({self.method!r}, {self.path!r}, query={cut(self.query)}, "
            f"headers={self.headers!r}, body={cut(self.body)})"
        )

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints failing examples with this

    def send(self, hub: Hub) -> httpx.Response:
        url = httpx.URL(hub.url + self.path, query=self.query)
        return hub.http.request(
            self.method,
            url,
            # httpx types names and values as one kind (str names it encodes as ASCII)
            headers=[(name.encode("ascii"), value) for name, value in self.headers],
            content=self.body,
            timeout=30,
        )


HEADER_VALUES = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if 0x20 <= c <= 0x7E or c >= 0x80).strip() or b"x"
) | st.sampled_from([b"127.0.0.1", b"::1", b"1.2.3.4, 5.6.7.8", b"unknown", b"", b"*"])
EXTRA_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "X-Forwarded-For",
                "X-Real-IP",
                "Forwarded",
                "Cookie",
                "Accept",
                "Accept-Charset",
                "Accept-Encoding",
                "Accept-Language",
                "User-Agent",
                "Authorization",
                "Origin",
                "Referer",
                "X-Request-ID",
                "X-Api-Key",
            ]
        ),
        HEADER_VALUES,
    ),
    max_size=3,
)
POST_QUERY_TYPES = [
    None,
    "application/octet-stream",
    "application/json",
    "text/plain",
    "application/xml",
    "text/html; charset=latin-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "MULTIPART/FORM-DATA; boundary=zzz",
    "application/x-www-form-urlencoded-evil",
    ";;;",
    "x/y; charset=\xe9",
]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
URLENCODED_TYPES = [
    b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=UTF-8",
    b"application/x-www-form-urlencoded; charset=latin-1",
    b"APPLICATION/X-WWW-FORM-URLENCODED",
]
ODD_METHODS = ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "FOO"]
MODES = ["get", "get", "post-query", "post-form", "post-multipart", "odd-method"]


def customer_shots(
    guards: st.SearchStrategy[list[tuple[str, str]]],
    extra: tuple[str, ...] = (),
    focus: tuple[str, ...] = tuple(PARAM_NAMES),
) -> st.SearchStrategy[Shot]:
    """Requests to the customer API. The guard's parameters are sent last wherever
    parameters are read (the query, and the body when it is a form), so they always win."""
    fuzzed_params = st.lists(params(extra, focus), min_size=1, max_size=8)
    junk_fragments = st.lists(st.sampled_from(RAW_FRAGMENTS), max_size=3)
    separators = st.sampled_from([b"&", b"&", b"&", b"&&", b"&;"])
    empty_bodies = st.sampled_from([b"", b"", b"{}", b"\x00\xff", b"a=b", b"--x--"])
    paddings = st.sampled_from([0] * 8 + [2_000, 100_000])

    @st.composite
    def shots(draw: st.DrawFn) -> Shot:
        path = draw(st.sampled_from(CUSTOMER_PATHS))
        guard = protect(draw(guards))
        fuzzed = draw(fuzzed_params)
        junk = draw(junk_fragments)
        headers = list(draw(EXTRA_HEADERS))
        mixed: list[Param | bytes] = list(fuzzed)
        for fragment in junk:
            mixed.insert(draw(INDEXES) % (len(mixed) + 1), fragment)
        separator = draw(separators)
        mode = draw(st.sampled_from(MODES))
        if mode in ("get", "odd-method"):
            method = "GET" if mode == "get" else draw(st.sampled_from(ODD_METHODS))
            body = None
            if mode == "odd-method" and draw(BOOLS):
                body = urlencoded([*mixed, *guard])
                headers.append(("Content-Type", b"application/x-www-form-urlencoded"))
            query = urlencoded([*mixed, *guard], separator, MAX_QUERY)
            return Shot(method, path, query, tuple(headers), body)
        if mode == "post-query":
            content_type = draw(st.sampled_from(POST_QUERY_TYPES))
            body = draw(empty_bodies)
            if content_type is not None:
                headers.append(("Content-Type", content_type.encode("latin-1")))
                if content_type.lower().startswith(FORM_TYPES):
                    body = b""  # a form body would be read: keep the query's guard last
            if draw(INDEXES) % 5 == 0:
                headers.append(("Content-Encoding", b"gzip"))
            query = urlencoded([*mixed, *guard], separator, MAX_QUERY)
            return Shot("POST", path, query, tuple(headers), body)
        # A body that is read: the fuzzed parameters are split between query and body.
        in_body = [draw(BOOLS) for _ in fuzzed]
        query_items: list[Param | bytes] = [
            p for p, b in zip(fuzzed, in_body, strict=True) if not b
        ]
        body_items = [p for p, b in zip(fuzzed, in_body, strict=True) if b]
        padding = draw(paddings)
        if padding:
            body_items.append(Param(b"pad", b"A" * padding, "pct"))
        query = urlencoded([*query_items, *guard], separator, MAX_QUERY)
        if mode == "post-form":
            form_type = draw(st.sampled_from(URLENCODED_TYPES))
            body = urlencoded([*body_items, *junk, *guard], separator)
        else:
            boundary = b"----otphub" + uuid.uuid4().hex.encode()
            form_type = b"multipart/form-data; boundary=" + boundary
            body = multipart([*body_items, *guard], boundary, files=draw(BOOLS))
        headers.append(("Content-Type", form_type))
        return Shot("POST", path, query, tuple(headers), body)

    return shots()


# A method a path does not serve: 405; one the HTTP parser does not know: 400; a body over
# the size limit is refused (413) before the method is looked at.
NOT_SERVED = (400, 405, 413)


def customer_check(shot: Shot, response: httpx.Response) -> str:
    if shot.method in ("GET", "POST"):
        return customer_answer(response)
    assert_not_5xx(response)
    assert_no_leak(response)
    # HEAD is GET without a body; other methods are not served here (405), and the HTTP
    # parser refuses methods it does not know (400).
    if shot.method == "HEAD":
        assert response.status_code in (200, 413), response
    else:
        assert response.status_code in NOT_SERVED, response
    return f"{shot.method} {response.status_code}"


def _could_be(raw: str, number: int) -> bool:
    """Whether any reading of ``raw`` as a number (however lax) gives ``number``."""
    for parse in (int, float):
        try:
            if parse(raw.replace("\x00", "").strip()) == number:
                return True
        except (ValueError, OverflowError):
            pass
    return False


def wrong_keys(scene: Scene) -> st.SearchStrategy[str]:
    """Keys that are not a customer's key: garbage, mistyped real keys, unknown well-formed
    keys, a provider's key. (Never a real key with whitespace around it: that is the key.)"""
    real = scene.rich_key

    def mistyped(index: int) -> str:
        i = index % len(real)
        swapped = real[i].swapcase() if real[i].isalpha() else ("1" if real[i] != "1" else "2")
        return real[:i] + swapped + real[i + 1 :]

    return st.one_of(
        st.sampled_from(
            [
                "",
                "\x00",
                real[:-1],
                real + "x",
                "x" + real,
                real.upper(),
                real.replace("_", "-"),
                real + "\x00",
                real + "%00",
                scene.seller.key,
                "' OR 1=1 --",
            ]
        ),
        st.integers(0, 200).map(mistyped),
        st.builds(lambda _: keys.new_key(keys.CUSTOMER_PREFIX), st.integers()),
        texts(),
    )


# ---------------------------------------------------------------- customer API


def test_customer_api_with_wrong_keys(hub: Hub) -> None:
    """Any action, any parameters, any transport, without a valid key: NO_KEY or BAD_KEY."""
    scene = stage(hub)
    guards: st.SearchStrategy[list[tuple[str, str]]] = st.one_of(
        st.builds(lambda k, a: [("api_key", k), ("action", a)], wrong_keys(scene), texts()),
        st.builds(
            lambda k, a: [("api_key", k), ("action", a)],
            wrong_keys(scene),
            st.sampled_from(KNOWN_ACTIONS),
        ),
        st.sampled_from(KNOWN_ACTIONS).map(lambda a: [("action", a)]),
        st.just([]),
    )

    def check(shot: Shot) -> str:
        label = customer_check(shot, response := shot.send(hub))
        if shot.method in ("GET", "POST") and response.status_code == 200:
            assert label in ("NO_KEY", "BAD_KEY"), (label, shot)
        return label

    seen = _fuzz(hub, scene, customer_shots(guards, (*scene.ids, "tg", "0")), check)
    if SANITY:
        assert seen["BAD_KEY"] and seen["NO_KEY"], seen


def test_customer_api_with_a_real_key_and_actions_that_cannot_spend(hub: Hub) -> None:
    """The key of a customer with money, with every action except the ones that buy, and
    setStatus only on ids where it cannot move money."""
    scene = stage(hub)
    # setStatus on these cannot move money: waiting activations inside the early-cancel
    # window (the clock stands still), another customer's, or no activation at all.
    safe_ids = st.sampled_from(
        [*map(str, scene.waiting), str(scene.foreign), "0", "-1", "99999", "", "x"]
    ) | texts().filter(lambda raw: not _could_be(raw, scene.coded))

    def guard(action: str, safe_id: str) -> list[tuple[str, str]]:
        name = action.replace("\x00", "").strip().lower()  # however lax the server reads it
        if name in ("getnumber", "getnumberv2"):
            action = "getStatus"
        pairs = [("api_key", scene.rich_key), ("action", action)]
        return [*pairs, ("id", safe_id)] if name == "setstatus" else pairs

    guards = st.builds(guard, st.sampled_from(KNOWN_ACTIONS) | texts(), safe_ids)
    shots = customer_shots(guards, (*scene.ids, *scene.phones, "tg", "0"))
    seen = _fuzz(hub, scene, shots, lambda shot: customer_check(shot, shot.send(hub)))
    served = sum(n for label, n in seen.items() if label not in ("NO_KEY", "BAD_KEY"))
    if SANITY:
        assert served > EXAMPLES // 3, seen
        assert seen["JSON"] and seen["ACCESS_BALANCE"] and seen["BAD_ACTION"], seen


def test_customer_api_purchases_without_money(hub: Hub) -> None:
    """The key of a customer with no money, with every action and especially getNumber and
    getNumberV2 with any filters: the purchase runs up to the hold, then rolls back."""
    scene = stage(hub)
    actions = weighted(
        (6, st.sampled_from(["getNumber", "getNumberV2"])),
        (1, st.sampled_from(KNOWN_ACTIONS)),
        (1, texts()),
    )

    def guard(action: str, service: bool) -> list[tuple[str, str]]:
        pairs = [("api_key", scene.poor_key), ("action", action)]
        # Mostly a known service, so that the filters are what gets fuzzed.
        return [("service", "tg"), *pairs] if service else pairs

    useful = ("tg", "wa", "0", "1", "mts", "any", "7900", str(scene.seller.id), "o-1")
    focus = (
        "country",
        "operator",
        "maxPrice",
        "max_price",
        "providerIds",
        "exceptProviderIds",
        "phoneException",
        "ref",
        "orderId",
        "activationType",
    )
    guards = st.builds(guard, actions, st.integers(0, 9).map(bool))

    def check(shot: Shot) -> str:
        label = customer_check(shot, shot.send(hub))
        assert label != "ACCESS_NUMBER", shot
        return label

    seen = _fuzz(hub, scene, customer_shots(guards, useful, focus), check)
    if SANITY:  # the purchase path ran to the hold often enough
        assert seen["NO_BALANCE"] >= EXAMPLES // 20, seen


# ---------------------------------------------------------------- supplier push endpoint

AGENT_CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"text/plain",
    None,
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
]
DEEP = [b"[" * 50_000, b'{"a":' * 10_000, b"[" * 1_500 + b"]" * 1_500]
# Text values spelled as raw JSON: lone surrogates and NUL through escapes.
RAW_JSON_TEXTS = [
    b'"\\ud800"',
    b'"code \\udfff 123"',
    b'"\\u0000"',
    b'"Your code: 1\\u00002"',
    b'"\\ud83d\\ude00 12345"',
    b"1e999",
    b"NaN",
    b"-Infinity",
]
PLACEHOLDER = "\x01PLACEHOLDER\x01"
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        texts(),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
BODY_KINDS = [
    *["json"] * 3,
    "gzip",
    "raw-text",
    "not-object",
    "encoding",
    "bom",
    "garbage",
    "bad-gzip",
    "gzip-bomb",
    "deep",
    "huge",
    "empty",
]


def with_raw_json(message: dict[str, Any], field: str, raw: bytes) -> bytes:
    """``message`` as JSON, with ``field`` spelled exactly as ``raw``."""
    encoded = json.dumps({**message, field: PLACEHOLDER})
    return encoded.replace(json.dumps(PLACEHOLDER), raw.decode()).encode()


def agent_shots(scene: Scene) -> st.SearchStrategy[Shot]:
    """Pushes: a valid message with up to three fields hostile or missing, in a body that is
    JSON, gzip, another encoding, garbage, too deep or too big."""
    phones = [int(p) for p in scene.phones]
    key = scene.seller.key
    valid = st.fixed_dictionaries(
        {
            "action": st.just("PUSH_SMS"),
            "key": st.just(key),
            "smsId": st.integers(min_value=0, max_value=2**63 - 1),
            "phone": st.sampled_from(phones),
            "phoneFrom": st.sampled_from(["Telegram", "WhatsApp", "+79001234567"]),
            "text": st.sampled_from(
                ["Your code: 48213", "Telegram code 991-204", "G-123456 is your Google code"]
            ),
        }
    )
    hostile: dict[str, st.SearchStrategy[Any]] = {
        "action": st.sampled_from(["push_sms", "GET_SERVICES", "", " PUSH_SMS"]) | JSON_VALUES,
        "key": st.sampled_from([scene.rich_key, key + "x", key.upper(), ""]) | JSON_VALUES,
        "smsId": st.integers(min_value=-5, max_value=2**64)
        | st.integers(min_value=0, max_value=10**6).map(str)
        | JSON_VALUES,
        "phone": st.sampled_from(
            [*scene.phones, "+7 900 000-00-01", 79999999999, 0, -79000000001, 7.9e10]
        )
        | JSON_VALUES,
        "phoneFrom": st.text(max_size=200) | JSON_VALUES,
        "text": texts() | JSON_VALUES,
    }
    changed = st.lists(st.sampled_from(sorted(hostile)), max_size=3, unique=True)
    extras = st.dictionaries(st.sampled_from(["extra", "key ", "", "\x00"]), JSON_VALUES)
    bombs = st.sampled_from([65_536, 70_000, 4_000_000]).map(lambda n: gzip.compress(b" " * n))
    methods = st.sampled_from(["POST"] * 12 + ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
    queries = st.lists(params(), max_size=2).map(lambda ps: urlencoded(ps, limit=MAX_QUERY))

    @st.composite
    def shots(draw: st.DrawFn) -> Shot:
        message = draw(valid)
        for name in draw(changed):
            if draw(INDEXES) % 4 == 0:
                del message[name]
            else:
                message[name] = draw(hostile[name])
        message.update(draw(extras))
        encoded = json.dumps(message, ensure_ascii=draw(BOOLS), allow_nan=True)
        raw = encoded.encode()
        kind = draw(st.sampled_from(BODY_KINDS))
        headers: list[tuple[str, bytes]] = []
        if kind == "gzip":
            raw = gzip.compress(raw)
            headers.append(("Content-Encoding", draw(st.sampled_from([b"gzip", b"GZIP"]))))
        elif kind == "raw-text":
            raw = with_raw_json(message, "text", draw(st.sampled_from(RAW_JSON_TEXTS)))
        elif kind == "not-object":
            raw = json.dumps(draw(JSON_VALUES), allow_nan=True).encode()
        elif kind == "encoding":
            codec = draw(st.sampled_from(["latin-1", "utf-16", "utf-32", "cp1251"]))
            raw = encoded.encode(codec, "replace")
        elif kind == "bom":
            raw = b"\xef\xbb\xbf" + raw
        elif kind == "garbage":
            raw = draw(st.binary(max_size=200) | st.sampled_from([b"{", b"}", b"null", b"\x00"]))
        elif kind == "bad-gzip":
            raw = draw(st.sampled_from([gzip.compress(raw)[:-5], b"\x1f\x8b\x08garbage", raw]))
            headers.append(("Content-Encoding", b"gzip"))
        elif kind == "gzip-bomb":
            raw = draw(bombs)
            headers.append(("Content-Encoding", b"gzip"))
        elif kind == "deep":
            raw = draw(st.sampled_from(DEEP))
        elif kind == "huge":
            raw = draw(st.sampled_from([b" " * 70_000, raw + b" " * 66_000, b"[" + b"1," * 40_000]))
        elif kind == "empty":
            raw = b""
        if not headers and draw(INDEXES) % 6 == 0:
            headers.append(
                ("Content-Encoding", draw(st.sampled_from([b"deflate", b"br", b"gzip"])))
            )
        content_type = draw(st.sampled_from(AGENT_CONTENT_TYPES))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        headers.extend(draw(EXTRA_HEADERS))
        return Shot(draw(methods), AGENT_PATH, draw(queries), tuple(headers), raw)

    return shots()


def test_agent_endpoint_hostile_bodies(hub: Hub) -> None:
    scene = stage(hub)
    staged = scene.ledger(hub)
    seen: collections.Counter[str] = collections.Counter()

    @FUZZ
    @given(agent_shots(scene))
    def run(shot: Shot) -> None:
        response = shot.send(hub)
        if shot.method == "POST":
            body = agent_answer(response)
            seen[f"{response.status_code} {body.get('error', body['status'])}"] += 1
        else:
            assert_not_5xx(response)
            assert_no_leak(response)
            assert response.status_code in NOT_SERVED, response
        # An SMS moves no money; the activations may have received codes, nothing else.
        now = scene.ledger(hub)
        assert now.balances == staged.balances
        assert [i for i, _ in now.activations] == [i for i, _ in staged.activations]

    run()
    assert scene.balances(hub) == tuple(hub.money(b) for b in STAGED_BALANCES)
    hub.assert_audit_clean()
    if SANITY:  # valid pushes (with a hostile text, sender, ...) were stored
        assert seen["200 SUCCESS"] >= EXAMPLES // 20, seen


# ---------------------------------------------------------------- /healthz and the socket

RAW_TIMEOUT = 1.0
PROBES = {"/healthz": b"OK", "/readyz": b"READY"}  # liveness, readiness
RAW_PATHS = [
    *(p.encode() for p in CUSTOMER_PATHS),
    AGENT_PATH.encode(),
    b"/healthz",
    b"*",
    b"",
    b"/stubs/handler_api.php/",
    b"//handler_api.php",
    b"/%00",
]
GARBAGE_LINES = st.binary(min_size=1, max_size=40).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"") or b"X"
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """Bytes on the socket that no HTTP client would send: raw non-ASCII and control bytes
    in the request target, broken methods and versions, garbage header lines."""
    method = draw(st.sampled_from([b"GET", b"POST", b"G\x00T", b"get", b"", b"\xff"]))
    target = draw(st.sampled_from(RAW_PATHS)) + b"?" + draw(st.binary(max_size=60))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b""]))
    lines = [method + b" " + target + b" " + version, b"Host: 127.0.0.1"]
    lines += draw(st.lists(GARBAGE_LINES, max_size=3))
    body = draw(st.binary(max_size=60))
    if draw(BOOLS):
        lines.append(b"Content-Length: " + str(len(body)).encode())
        lines.append(b"Content-Type: application/x-www-form-urlencoded")
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _send_raw(url: str, data: bytes) -> bytes:
    parts = urlsplit(url)
    # No half-close: on EOF the server drops the connection before answering.
    with socket.create_connection((parts.hostname, parts.port), timeout=RAW_TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass  # a request the server still waits on, or dropped: no answer, no harm
    return b"".join(chunks)


def test_probes_odd_methods_and_raw_bytes(hub: Hub) -> None:
    scene = stage(hub)
    queries = st.lists(params(), max_size=3).map(lambda ps: urlencoded(ps, limit=MAX_QUERY))
    healthz = st.builds(
        Shot,
        st.sampled_from(["GET", "GET", "HEAD", "POST", "PUT", "DELETE", "FOO"]),
        st.sampled_from(sorted(PROBES)),
        queries,
        EXTRA_HEADERS.map(tuple),
        st.binary(max_size=100),
    )

    def check(case: Shot | bytes) -> str:
        if isinstance(case, Shot):
            response = case.send(hub)
            assert_not_5xx(response)
            assert_no_leak(response)
            if case.method in ("GET", "HEAD"):
                assert response.status_code == 200, response
                assert response.content == (PROBES[case.path] if case.method == "GET" else b"")
                assert response.headers["content-type"] == TEXT
            else:
                assert response.status_code in NOT_SERVED, response
            return f"probe {response.status_code}"
        answer = _send_raw(hub.url, case)
        if not answer:
            return "raw: no answer"  # the server may drop a request it cannot parse
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
        status = int(status_line.split(b" ")[1])
        head, _, body = answer.partition(b"\r\n\r\n")
        assert_not_5xx(httpx.Response(status, content=body))
        assert_no_leak(httpx.Response(status, content=body))
        if b"content-type: application/json" in head.lower():
            json.loads(body)
        return f"raw {status}"

    seen = _fuzz(hub, scene, healthz | raw_requests(), check)
    if SANITY:
        assert seen["probe 200"] and any(label.startswith("raw 4") for label in seen), seen


# ---------------------------------------------------------------- what the fuzzer found
# The minimal inputs behind every failure the fuzzer reported, as plain tests, all cases
# of a kind in one test so that one run lists them all.


def test_agent_malformed_json_is_a_client_error(hub: Hub) -> None:
    """Deeply nested JSON is a malformed body: a 4xx, not a 5xx (the agent would resend it
    every 10 seconds, forever)."""
    stage(hub)
    failures = []
    for raw in DEEP:
        response = hub.http.post(AGENT_PATH, content=raw)
        if response.status_code >= 500:
            failures.append((raw[:12], response.status_code, response.text))
        else:
            agent_answer(response)
    assert not failures, failures


def test_agent_unstorable_text_is_not_a_5xx(hub: Hub) -> None:
    """A text or sender with a lone surrogate or a NUL (valid JSON escapes) is stored
    cleaned, or refused with a 4xx; never a 5xx, repeat after repeat."""
    scene = stage(hub)
    failures = []
    for sms_id, (field, raw) in enumerate(
        [(f, r) for f in ("text", "phoneFrom") for r in RAW_JSON_TEXTS[:4]], start=1000
    ):
        message = {
            "action": "PUSH_SMS",
            "key": scene.seller.key,
            "smsId": sms_id,
            "phone": int(scene.phones[-1]),  # a free number: nothing changes hands
            "phoneFrom": "Telegram",
            "text": "Your code: 48213",
        }
        for _ in range(2):  # the agent resends until it sees an answer it understands
            response = hub.http.post(AGENT_PATH, content=with_raw_json(message, field, raw))
            if response.status_code >= 500:
                failures.append((field, raw.decode(), response.status_code, response.text))
                break
            agent_answer(response)
    assert not failures, failures


NUL_CASES = [
    {"action": "getNumber", "service": "tg", "operator": "\x00"},
    {"action": "getNumber", "service": "tg", "operator": "mts\x00"},
    {"action": "getNumberV2", "service": "tg", "orderId": "\x00"},
    {"action": "getNumberV2", "service": "tg", "orderId": "o\x001"},
    {"action": "getNumber", "service": "tg", "ref": "\x00"},
    {"action": "getNumber", "service": "tg", "phoneException": "7900\x00"},
    {"action": "getNumber", "service": "tg", "providerIds": "1\x00"},
    {"action": "getNumbersStatus", "operator": "mts\x00"},
    {"action": "getStatus", "id": "1\x00"},
    {"action": "getHistory", "start": "0\x00"},
    {"action": "getServicesList", "country": "0\x00"},
    {"action": "getOperators", "country": "\x00"},
]


def test_customer_nul_bytes_are_not_an_internal_error(hub: Hub) -> None:
    """A NUL in a parameter (``%00``) is an answer of the protocol, not ERROR_SQL: an input
    that the database cannot store is refused, or matches nothing."""
    scene = stage(hub)
    staged = scene.ledger(hub)
    failures = []
    for case in NUL_CASES:
        for key in (scene.poor_key, scene.rich_key):
            query = {"api_key": key, **case}
            if key == scene.rich_key and case["action"].startswith("getNumber"):
                query["maxPrice"] = "0.01"  # refused before any money moves
            response = hub.http.get(CUSTOMER_PATHS[0], params=query)
            if response.text == "ERROR_SQL":
                failures.append(case)
                break
            customer_answer(response)
    assert scene.ledger(hub) == staged
    assert not failures, failures


def test_agent_oversized_body_is_a_json_error(hub: Hub) -> None:
    """Over the size limit the agent still gets its protocol's answer: a JSON ERROR with a
    4xx (every answer of the agent protocol has ``status``)."""
    scene = stage(hub)
    message = {
        "action": "PUSH_SMS",
        "key": scene.seller.key,
        "smsId": 1,
        "phone": int(scene.phones[-1]),
        "text": "Your code: 48213",
    }
    padded = json.dumps(message).encode() + b" " * 70_000
    for raw, headers in [
        (padded, {"Content-Type": "application/json"}),
        (gzip.compress(padded), {"Content-Encoding": "gzip"}),  # inflates past the limit
    ]:
        response = hub.http.post(AGENT_PATH, content=raw, headers=headers)
        assert response.status_code == 413, response
        agent_answer(response)


def test_a_key_with_a_nul_is_not_the_key(hub: Hub) -> None:
    """Whatever is done with NUL bytes in parameters, a real key with a NUL (or any other
    byte) added is not that key."""
    scene = stage(hub)
    staged = scene.ledger(hub)
    for key in (scene.rich_key + "\x00", "\x00" + scene.rich_key, scene.rich_key + "\ufffd"):
        for action, extra in [("getBalance", {}), ("getNumber", {"service": "tg"})]:
            response = hub.http.get(
                CUSTOMER_PATHS[0], params={"api_key": key, "action": action, **extra}
            )
            assert customer_answer(response) == "BAD_KEY", (key, action)
    assert scene.ledger(hub) == staged
