"""The pure rules of webhooks: which addresses a delivery may reach, the signature, the
body, the schedule."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from otphub.domain import webhooks as rules


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",  # multicast (is_global says True)
        "239.255.255.250",
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",  # mapped forms are reserved: refused whatever they map to
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1 (is_global says True)
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2001:db8::1",  # documentation
        "not an address",
    ],
)
def test_addresses_deliveries_may_not_reach(address: str) -> None:
    assert not rules.is_public(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"],
)
def test_public_addresses(address: str) -> None:
    assert rules.is_public(address)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"activationId":1}'
    header = rules.signature("s3cret", 1780000000, body)
    expected = hmac.new(b"s3cret", b"1780000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1780000000,v1={expected}"


def test_body_fields_in_order() -> None:
    assert rules.body(
        activation_id=5,
        service="tg",
        text='Code: "12345"',
        code="12345",
        country=0,
        received_at="2026-06-01 12:00:00",
    ) == (
        '{"activationId":5,"service":"tg","text":"Code: \\"12345\\"","code":"12345",'
        '"country":0,"receivedAt":"2026-06-01 12:00:00"}'
    )


def test_schedule_is_eight_attempts_within_two_hours() -> None:
    for message_id in range(1, 200):
        waits = [rules.wait_before(message_id, attempt) for attempt in range(2, 9)]
        base = [b - a for a, b in zip(rules.SCHEDULE, rules.SCHEDULE[1:], strict=False)]
        assert all(g <= w <= g * 1.1 for w, g in zip(waits, base, strict=True))
        assert sum(waits) < rules.GIVE_UP_AFTER - 8 * 60  # room for 8 slow attempts
    # Jitter spreads messages apart.
    assert len({rules.wait_before(i, 8) for i in range(1, 100)}) > 10


def test_parse_url_defaults_the_port() -> None:
    assert rules.parse_url("https://Example.com/x?y=1").port == 443
    assert rules.parse_url("http://example.com/x").port == 80
    target = rules.parse_url(" HTTP://example.com:8080/x ")
    assert (target.scheme, target.host, target.port, target.url) == (
        "http",
        "example.com",
        8080,
        "HTTP://example.com:8080/x",
    )
