"""The upstream client (services/upstreams.py) against a fake upstream on 127.0.0.1: every
answer word of the customer protocol, and every way an upstream can fail."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.responses import Response

from otphub.db import outbox
from otphub.domain.supply import NoRemoteNumbers, NumberRequest, RemoteProvider, SupplierFailure
from otphub.domain.upstream_protocol import RemoteState, RemoteStatus
from otphub.services import suppliers, upstreams
from tests.support import Hub
from tests.upstream.conftest import register
from tests.upstream.fake import FakeUpstream, held_open, never


@pytest.fixture
def backend() -> str:
    """These tests are about the exchange with the upstream (every answer word, every way it
    fails), which no database changes; they run on SQLite only. What the client stores (the
    balance there, the numbers it gives back through the outbox) is tested on both databases
    by test_reselling.py, test_poller.py and test_against_otphub.py."""
    return "sqlite"


def request(**changes: Any) -> NumberRequest:
    values: dict[str, Any] = {
        "purchase_id": 1,
        "service": "tg",
        "country_id": 0,
        "operator": "any",
        "payout": 50,
        "excluded_prefixes": (),
    }
    values.update(changes)
    return NumberRequest(**values)


def failure(hub: Hub, coro: Any) -> str:
    with pytest.raises(SupplierFailure) as caught:
        hub.call(coro)
    return str(caught.value)


def balance_there(hub: Hub, provider: RemoteProvider) -> int | None:
    found = hub.call(suppliers.remote_provider(hub.rt, provider.id))
    assert found is not None
    return found.remote_balance


def give_backs(hub: Hub) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with hub.rt.db.read() as conn:
            due = await outbox.due(conn, now=hub.clock.now(), limit=10, kinds=("upstream_status",))
        return [m.payload for m in due]

    return hub.call(run())


# ---------------------------------------------------------------- getBalance


def test_balance_sends_the_key_and_reads_the_amount(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getBalance"] = "ACCESS_BALANCE:12.50"
    assert hub.call(upstreams.get_balance(hub.rt, upstream)) == 1250
    assert fake.of("getBalance") == [{"api_key": "upstream-key", "action": "getBalance"}]


@pytest.mark.parametrize(
    ("answer", "minor"),
    [
        ("ACCESS_BALANCE:0", 0),
        ("ACCESS_BALANCE:7.1", 710),
        ("ACCESS_BALANCE:3.999", 399),
        ("ACCESS_BALANCE:-2.00", 0),
    ],
)
def test_balance_is_rounded_down_never_up(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str, minor: int
) -> None:
    fake.answers["getBalance"] = answer
    assert hub.call(upstreams.get_balance(hub.rt, upstream)) == minor


@pytest.mark.parametrize(
    "answer", ["BAD_KEY", "ERROR_SQL", "ACCESS_BALANCE:", "ACCESS_BALANCE:1e3", "<html>", ""]
)
def test_balance_anything_else_is_a_failure(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str
) -> None:
    fake.answers["getBalance"] = answer
    failure(hub, upstreams.get_balance(hub.rt, upstream))


# ---------------------------------------------------------------- getPrices


def test_prices_keep_known_exact_lines_with_stock(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getPrices"] = Response(
        json.dumps(
            {
                "0": {
                    "tg": {"cost": 0.5, "count": 12, "physicalCount": 12},
                    "wa": {"cost": 1, "count": 3},
                    "vk": {"cost": 0.125, "count": 5},  # finer than cents: refused
                    "go": {"cost": "0.5", "count": 5},  # a string: refused
                    "ig": {"cost": 0.4, "count": 0},  # no stock: left out
                    "fb": {"cost": 0.4, "count": True},  # a boolean is no count
                    "zz_unknown": {"cost": 0.4, "count": 1},
                },
                "2": {"tg": {"cost": 0.75, "count": 1}},
                "99999": {"tg": {"cost": 0.1, "count": 1}},
            }
        ),
        media_type="application/json",
    )
    prices = hub.call(upstreams.get_prices(hub.rt, upstream))
    assert sorted((p.country_id, p.service, p.count, p.cost) for p in prices.lines) == [
        (0, "tg", 12, 50),
        (0, "wa", 3, 100),
        (2, "tg", 1, 75),
    ]
    assert (prices.refused, prices.unknown) == (3, 2)


@pytest.mark.parametrize(
    "answer", ["BAD_KEY", "[1, 2]", "{", '{"0": 5}', '{"0": {"tg": {"cost": NaN, "count": 1}}}']
)
def test_prices_that_are_not_the_shape_are_a_failure(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str
) -> None:
    fake.answers["getPrices"] = answer
    failure(hub, upstreams.get_prices(hub.rt, upstream))


def test_prices_larger_than_the_cap_are_refused_while_streaming(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getPrices"] = b'{"0": {' + b" " * (200 * 1024) + b"}}"
    assert "larger than" in failure(hub, upstreams.get_prices(hub.rt, upstream))


# ---------------------------------------------------------------- getNumber


def test_number_sends_max_price_as_otphub_reads_it_and_the_filters(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getNumber"] = "ACCESS_NUMBER:4711:79001234567"
    fake.answers["getBalance"] = "ACCESS_BALANCE:9.50"
    got = hub.call(
        upstreams.get_number(
            hub.rt,
            upstream,
            request(payout=50, operator="mts", excluded_prefixes=("7918", "790055")),
        )
    )
    assert (got.remote_id, got.phone, got.operator) == ("4711", "79001234567", "any")
    sent = fake.of("getNumber")[0]
    assert sent == {
        "api_key": "upstream-key",
        "action": "getNumber",
        "service": "tg",
        "country": "0",
        "maxPrice": "0.50",
        "operator": "mts",
        "phoneException": "7918,790055",
    }
    # The balance is read again after a purchase: the stock stops when it cannot pay.
    assert balance_there(hub, upstream) == 950


@pytest.mark.parametrize("answer", ["NO_NUMBERS", "WRONG_MAX_PRICE:0.60"])
def test_no_number_there(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str
) -> None:
    fake.answers["getNumber"] = answer
    with pytest.raises(NoRemoteNumbers):
        hub.call(upstreams.get_number(hub.rt, upstream, request()))


def test_no_balance_there_is_a_failure_and_the_balance_is_read_again(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getNumber"] = "NO_BALANCE"
    fake.answers["getBalance"] = "ACCESS_BALANCE:0.20"
    assert "NO_BALANCE" in failure(hub, upstreams.get_number(hub.rt, upstream, request()))
    assert balance_there(hub, upstream) == 20


@pytest.mark.parametrize(
    "answer",
    [
        "BAD_SERVICE",
        "BAD_KEY",
        "BANNED:'2026-1-1 1-1-1'",
        "ERROR_SQL",
        "ACCESS_NUMBER:abc:7900",
        "ACCESS_NUMBER:1:79001234567:x",
        "ACCESS_NUMBER:1:+79001234567",
        "CHANNELS_LIMIT",
    ],
)
def test_number_anything_else_is_a_failure(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str
) -> None:
    fake.answers["getNumber"] = answer
    failure(hub, upstreams.get_number(hub.rt, upstream, request()))
    assert give_backs(hub) == []


@pytest.mark.parametrize("phone", ["4915112345678", "79181234567"])
def test_a_number_not_asked_for_is_given_back(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, phone: str
) -> None:
    """Another country's number, or one with an excluded prefix: refused, and cancelled
    there through the outbox."""
    fake.answers["getNumber"] = f"ACCESS_NUMBER:77:{phone}"
    failure(hub, upstreams.get_number(hub.rt, upstream, request(excluded_prefixes=("7918",))))
    assert give_backs(hub) == [{"id": "77", "status": 8}]


# ---------------------------------------------------------------- getStatus


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("STATUS_WAIT_CODE", RemoteStatus(RemoteState.WAITING)),
        ("STATUS_WAIT_RESEND", RemoteStatus(RemoteState.WAITING)),
        ("STATUS_OK:48213", RemoteStatus(RemoteState.CODE, "48213")),
        ("STATUS_OK:Your code is 4 8 2", RemoteStatus(RemoteState.CODE, "Your code is 4 8 2")),
        ("STATUS_WAIT_RETRY:48213", RemoteStatus(RemoteState.RETRY, "48213")),
        ("STATUS_CANCEL", RemoteStatus(RemoteState.ENDED)),
        ("NO_ACTIVATION", RemoteStatus(RemoteState.UNKNOWN)),
    ],
)
def test_status_words(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str, status: RemoteStatus
) -> None:
    fake.answers["getStatus"] = answer
    assert hub.call(upstreams.get_status(hub.rt, upstream, remote_id="12")) == status
    assert fake.of("getStatus")[0]["id"] == "12"


def test_status_long_poll_asks_with_wait(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getStatus"] = "STATUS_WAIT_CODE"
    hub.call(upstreams.get_status(hub.rt, upstream, remote_id="12", wait=1))
    assert fake.of("getStatus")[0]["wait"] == "1"


@pytest.mark.parametrize(
    "answer", ["STATUS_OK:", "STATUS_OK:a\x00b", "STATUS_OK", "BAD_KEY", "STATUS_CANCEL:x", "ok"]
)
def test_status_anything_else_is_a_failure(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str
) -> None:
    fake.answers["getStatus"] = answer
    failure(hub, upstreams.get_status(hub.rt, upstream, remote_id="12"))


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("STATUS_CANCEL", None),
        ("BAD_ACTION", None),  # no getStatusV2 there
        ("NO_ACTIVATION", None),
        ('{"verificationType":0,"sms":null,"call":null}', None),
        (
            '{"verificationType":0,"sms":{"dateTime":"2026-01-01 00:00:00","code":"5512",'
            '"text":"code 5512"},"call":null}',
            "5512",
        ),
    ],
)
def test_the_code_of_an_ended_activation(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str, code: str | None
) -> None:
    fake.answers["getStatusV2"] = answer
    assert hub.call(upstreams.ended_code(hub.rt, upstream, remote_id="12")) == code


@pytest.mark.parametrize("answer", ["ERROR_SQL", '{"sms": 5}', '{"sms": {"code": 5}}', "[]"])
def test_the_code_of_an_ended_activation_unreadable(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, answer: str
) -> None:
    """Not known to have no code: a failure, tried again (never a refund by mistake)."""
    fake.answers["getStatusV2"] = answer
    failure(hub, upstreams.ended_code(hub.rt, upstream, remote_id="12"))


# ---------------------------------------------------------------- setStatus (the outbox)


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (1, "ACCESS_READY"),
        (3, "ACCESS_RETRY_GET"),
        (6, "ACCESS_ACTIVATION"),
        (8, "ACCESS_CANCEL"),
        # Ended there already: nothing left to deliver.
        (8, "NO_ACTIVATION"),
        (8, "BAD_STATUS"),
        (6, "BAD_STATUS"),
        (8, "ACCESS_CANCEL_ALREADY"),
    ],
)
def test_delivered_statuses(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, status: int, answer: str
) -> None:
    fake.answers["setStatus"] = answer
    hub.call(upstreams.deliver_status(hub.rt, upstream, {"id": "31", "status": status}))
    assert fake.of("setStatus") == [
        {"api_key": "upstream-key", "action": "setStatus", "id": "31", "status": str(status)}
    ]


@pytest.mark.parametrize(
    ("status", "answer"),
    [(8, "EARLY_CANCEL_DENIED"), (6, "ACCESS_CANCEL"), (8, "ERROR_SQL"), (1, "BAD_KEY"), (3, "")],
)
def test_statuses_to_try_again_later(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider, status: int, answer: str
) -> None:
    fake.answers["setStatus"] = answer
    failure(hub, upstreams.deliver_status(hub.rt, upstream, {"id": 31, "status": status}))


def test_a_malformed_message_is_not_retried(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    hub.call(upstreams.deliver_status(hub.rt, upstream, {"id": "x", "status": 8}))
    hub.call(upstreams.deliver_status(hub.rt, upstream, {"id": "1", "status": 7}))
    assert fake.of("setStatus") == []


# ---------------------------------------------------------------- transport


def test_http_errors_timeouts_and_refused_connections_are_failures(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getBalance"] = Response("oops", status_code=500)
    assert "HTTP 500" in failure(hub, upstreams.get_balance(hub.rt, upstream))
    fake.answers["getBalance"] = Response("", status_code=302, headers={"location": "/x"})
    assert "HTTP 302" in failure(hub, upstreams.get_balance(hub.rt, upstream))
    fake.answers["getNumber"] = never
    reason = failure(hub, upstreams.get_number(hub.rt, upstream, request()))
    assert "time" in reason and "upstream-key" not in reason
    fake.answers["getBalance"] = b"ACCESS_BALANCE:\xff"
    failure(hub, upstreams.get_balance(hub.rt, upstream))
    closed = register(hub, "http://127.0.0.1:9/stubs/handler_api.php")
    reason = failure(hub, upstreams.get_balance(hub.rt, closed))
    assert "127.0.0.1" not in reason and "upstream-key" not in reason


def test_a_busy_upstream_fails_a_purchase_at_once(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    """Two calls in flight (the test's limit): a third purchase does not queue behind
    them, it fails at once and the purchase tries the next offer."""
    release, held = held_open()
    fake.answers["getNumber"] = held

    async def scenario() -> tuple[str, list[BaseException | Any]]:
        first = [
            asyncio.create_task(upstreams.get_number(hub.rt, upstream, request())) for _ in range(2)
        ]
        for _ in range(500):  # until both are held open at the upstream
            if len(fake.of("getNumber")) == 2:
                break
            await asyncio.sleep(0.01)
        try:
            await upstreams.get_number(hub.rt, upstream, request())
        except SupplierFailure as exc:
            third = str(exc)
        finally:
            release.set()
        return third, await asyncio.gather(*first, return_exceptions=True)

    third, first = hub.call(scenario())
    assert "too many calls" in third
    assert len(fake.of("getNumber")) == 2
    assert all(isinstance(result, NoRemoteNumbers) for result in first)


def test_sms_ids_are_stable_per_code() -> None:
    first = upstreams.sms_id_of_code("5", "1234")
    assert first == upstreams.sms_id_of_code("5", "1234")
    assert first != upstreams.sms_id_of_code("5", "1235")
    assert first != upstreams.sms_id_of_code("6", "1234")
    assert 0 <= first < 2**63


def test_a_refused_status_never_quotes_its_code(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    """A failure's reason is logged and kept as the provider's last error: it never
    carries a code, not even a malformed one."""
    for answer in ("STATUS_OK:48213\x01", "STATUS_OKAY:48213", "STATUS_WAIT_RETRY:48213\x7f"):
        fake.answers["getStatus"] = answer
        assert "48213" not in failure(hub, upstreams.get_status(hub.rt, upstream, remote_id="1"))
    fake.answers["getStatusV2"] = '{"sms": {"code": "48213\\u0002"}}'
    assert "48213" not in failure(hub, upstreams.ended_code(hub.rt, upstream, remote_id="1"))


def test_whitespace_around_a_word_is_not_part_of_it(
    hub: Hub, fake: FakeUpstream, upstream: RemoteProvider
) -> None:
    fake.answers["getStatus"] = "STATUS_OK:48213\r\n"
    status = hub.call(upstreams.get_status(hub.rt, upstream, remote_id="1"))
    assert status == RemoteStatus(RemoteState.CODE, "48213")
    fake.answers["getBalance"] = "ACCESS_BALANCE:1.00\n"
    assert hub.call(upstreams.get_balance(hub.rt, upstream)) == 100
