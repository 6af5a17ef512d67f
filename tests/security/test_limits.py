"""Abuse limits: per-key rates (never cutting off a client that polls each live activation
once a second), failed authentications per IP, request and parameter sizes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from otphub.http import limits
from otphub.http.limits import Limiter
from otphub.services import accounts
from tests.support import Hub


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def install_limiter(hub: Hub, *, auth_failures_per_minute: int = 60) -> FakeMonotonic:
    clock = FakeMonotonic()
    app = hub.live.app.app
    assert isinstance(app, Starlette)
    app.state.limiter = Limiter(auth_failures_per_minute=auth_failures_per_minute, clock=clock)
    return clock


@pytest.mark.parametrize("hub_settings", [{"rate_limit": 5}])
def test_a_key_over_its_rate_gets_429_with_retry_after(hub: Hub) -> None:
    clock = install_limiter(hub)
    key = hub.customer()
    answers = [hub.api(key, "getBalance") for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    refused = answers[-1]
    assert refused.text == "TOO_MANY_REQUESTS"
    assert refused.headers["content-type"] == "text/plain; charset=utf-8"
    assert refused.headers["retry-after"] == "1"
    clock.now += 0.2  # one token back at 5 per second
    assert hub.api(key, "getBalance").status_code == 200
    assert hub.api(key, "getBalance").status_code == 429
    # Another key of the same deployment has its own bucket.
    assert hub.api(hub.customer(), "getBalance").status_code == 200


@pytest.mark.parametrize("hub_settings", [{"rate_limit": 1}])
def test_polling_every_live_activation_once_a_second_is_never_throttled(hub: Hub) -> None:
    clock = install_limiter(hub)
    hub.stocked(count=10)
    key = hub.customer("10.00")
    bought = []
    for _ in range(10):
        clock.now += 1.0
        bought.append(hub.buy(key)[0])
    clock.now += 10  # the live-activation count is refreshed every few seconds
    for _second in range(30):
        for activation_id in bought:
            answer = hub.api(key, "getStatus", id=activation_id)
            assert answer.status_code == 200, answer.text
            assert answer.text == "STATUS_WAIT_CODE"
        clock.now += 1.0


def test_per_customer_rate_overrides_the_setting(hub: Hub) -> None:
    install_limiter(hub)
    customer_id, key = hub.customer_id()
    hub.call(accounts.set_limits(hub.rt, customer_id=customer_id, rate_limit=2))
    assert [hub.api(key, "getBalance").status_code for _ in range(3)] == [200, 200, 429]
    hub.call(accounts.set_limits(hub.rt, customer_id=customer_id, rate_limit=0))  # unlimited
    assert all(hub.api(key, "getBalance").status_code == 200 for _ in range(50))


def test_failed_authentications_block_bad_keys_from_the_address(hub: Hub) -> None:
    clock = install_limiter(hub, auth_failures_per_minute=5)
    good = hub.customer()
    wrong = "ohc_" + "A" * 36
    assert [hub.say(wrong, "getBalance") for _ in range(5)] == ["BAD_KEY"] * 5
    blocked = hub.api(wrong, "getBalance")
    assert blocked.status_code == 429
    assert blocked.text == "TOO_MANY_REQUESTS"
    assert int(blocked.headers["retry-after"]) >= 1
    # The supplier endpoint shares the address's record.
    pushed = hub.http.post("/agent/api/sms", json={"action": "PUSH_SMS", "key": "ohp_nope"})
    assert pushed.status_code == 429
    assert pushed.json() == {"status": "ERROR", "error": "too many failed authentications"}
    assert int(pushed.headers["retry-after"]) >= 1
    # A valid key from the same address is served all along.
    assert hub.say(good, "getBalance") == "ACCESS_BALANCE:10.00"
    clock.now += 12  # 5 per minute: one failure forgiven every 12 s
    assert hub.say(wrong, "getBalance") == "BAD_KEY"
    assert hub.api(wrong, "getBalance").status_code == 429


def test_a_valid_key_is_never_refused_for_its_neighbours_bad_keys(hub: Hub) -> None:
    """Behind one NAT, a client sending two bad keys a second (the default limit is 60 a
    minute) once blocked every customer and every provider push of that address."""
    clock = install_limiter(hub)
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    _, phone = hub.buy(key)
    wrong = "ohc_" + "A" * 36
    refused = []
    for second in range(120):
        for _ in range(2):
            refused.append(hub.api(wrong, "getBalance").status_code)
        assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.50", second
        if second % 30 == 29:
            pushed = hub.push_sms(seller, phone, f"code {second}0000")
            assert pushed.json() == {"status": "SUCCESS"}, (second, pushed.text)
        clock.now += 1.0
    assert 429 in refused  # the neighbour did get blocked


def test_provider_key_guessing_counts_too(hub: Hub) -> None:
    install_limiter(hub, auth_failures_per_minute=3)
    for _ in range(3):
        answer = hub.http.post("/agent/api/sms", json={"action": "PUSH_SMS", "key": "nope"})
        assert answer.status_code == 401
    assert hub.api("ohc_" + "A" * 36, "getBalance").status_code == 429
    assert hub.api(hub.customer(), "getBalance").status_code == 200


def test_the_address_table_is_bounded_and_keeps_its_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flood of new addresses (IPv6 gives anyone millions) once wiped the whole table at
    100,000 entries, every block with it. Now the table stays bounded by dropping first
    the addresses that are forgiven, then those with the most failures left to make."""
    monkeypatch.setattr(limits, "_MAX_BUCKETS", 100)
    clock = FakeMonotonic()
    limiter = Limiter(auth_failures_per_minute=5, clock=clock)
    blocked = [f"10.0.0.{i}" for i in range(20)]
    for address in blocked:
        assert [limiter.failed_auth(address) for _ in range(5)] == [0.0] * 5
        assert limiter.failed_auth(address) > 0
    for n in range(10_000):
        limiter.failed_auth(f"2001:db8::{n:x}")  # one failure each
        clock.now += 0.001
    assert len(limiter._ips) <= 100
    assert all(limiter.failed_auth(address) > 0 for address in blocked)
    # Forgiven in time, as before.
    clock.now += 60
    assert limiter.failed_auth(blocked[0]) == 0.0


def test_bodies_queries_and_parameters_have_limits(hub: Hub) -> None:
    key = hub.customer()
    path = "/stubs/handler_api.php"
    big_body = hub.http.post(path, content=b"a=" + b"x" * (64 * 1024))
    assert (big_body.status_code, big_body.text) == (413, "REQUEST_TOO_LARGE")

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    chunked = hub.http.post(path, content=chunks())  # no Content-Length: streamed
    assert (chunked.status_code, chunked.text) == (413, "REQUEST_TOO_LARGE")
    long_query = hub.http.get(
        path, params={"api_key": key, "action": "getBalance", "x": "y" * 9000}
    )
    assert (long_query.status_code, long_query.text) == (413, "REQUEST_TOO_LARGE")
    long_value = hub.api(key, "getBalance", ref="r" * 1025)
    assert (long_value.status_code, long_value.text) == (413, "REQUEST_TOO_LARGE")
    many = hub.api(key, "getBalance", **{f"p{i}": "1" for i in range(70)})
    assert (many.status_code, many.text) == (413, "REQUEST_TOO_LARGE")
    # Right below the limits everything still works.
    assert hub.say(key, "getBalance", ref="r" * 1024) == "ACCESS_BALANCE:10.00"
    agent = hub.http.post("/agent/api/sms", content=b"{" + b" " * (64 * 1024) + b"}")
    assert agent.status_code == 413
