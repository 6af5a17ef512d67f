"""Webhooks without input/output: which URLs are acceptable, which addresses a delivery
may reach, the body of a delivery, its signature, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from otphub.domain import errors

MAX_URL_LENGTH = 2000
SCHEMES = ("http", "https")
SIGNATURE_HEADER = "X-OTPHub-Signature"

# Seconds after the first attempt at which each of the 8 attempts is due (each a little
# later: jitter, so that a receiver back from an outage does not get every retry at once).
SCHEDULE = (0, 10, 30, 120, 300, 900, 1800, 3600)
MAX_ATTEMPTS = len(SCHEDULE)
JITTER = 0.1  # up to 10 % of the wait before an attempt is added to it
# Never an attempt later than this after the SMS (a deployment down for hours does not
# send codes that are long useless; the schedule itself ends well before).
GIVE_UP_AFTER = 2 * 3600

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL accepted for a webhook, with what a delivery needs of it."""

    url: str
    scheme: str
    host: str  # as written (for IDNA names the caller's HTTP client encodes it)
    port: int


def parse_url(raw: str) -> Target:
    """An absolute http or https URL with a host, no user name or password, at most 2,000
    characters of printable ASCII (a name in another script is written in its ``xn--``
    form). Raises ``InvalidInput`` saying what is wrong."""
    url = raw.strip()
    if not url:
        raise errors.InvalidInput("the webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise errors.InvalidInput(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise errors.InvalidInput(
            "the webhook URL must be printable ASCII without spaces (percent-encode the rest)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise errors.InvalidInput(f"the webhook URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise errors.InvalidInput("the webhook URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise errors.InvalidInput("the webhook URL must not hold a user name or password")
    host = parts.hostname
    if not host:
        raise errors.InvalidInput("the webhook URL has no host")
    if parts.fragment:
        raise errors.InvalidInput("the webhook URL must not have a #fragment")
    return Target(
        url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80)
    )


def is_public(address: str) -> bool:
    """Whether a delivery may connect to this address: a global unicast one. Private,
    loopback, link-local, multicast, reserved and unspecified addresses are not, nor IPv6
    forms that lead to one of those (IPv4-mapped, 6to4, Teredo, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])  # IPv6 zone ids: fe80::1%eth0
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped is not None:
            embedded.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if not all(is_public(str(v4)) for v4 in embedded):
            return False
    return bool(
        ip.is_global
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
    )


def body(
    *, activation_id: int, service: str, text: str, code: str, country: int, received_at: str
) -> str:
    """The JSON text of a delivery (sms-activate's webhook fields, in this order)."""
    return json.dumps(
        {
            "activationId": activation_id,
            "service": service,
            "text": text,
            "code": code,
            "country": country,
            "receivedAt": received_at,
        },
        separators=(",", ":"),
    )


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _jitter(message_id: int, attempt: int) -> float:
    # Derived from the message rather than drawn, so that the wait before an attempt can be
    # told again from the row (``last_attempt_at`` of a webhook's latest delivery).
    digest = hashlib.blake2s(f"{message_id}:{attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32


def wait_before(message_id: int, attempt: int) -> int:
    """Seconds between the end of attempt ``attempt - 1`` and attempt ``attempt`` (2..8)."""
    gap = SCHEDULE[attempt - 1] - SCHEDULE[attempt - 2]
    return gap + int(gap * JITTER * _jitter(message_id, attempt))


TEST_TEXT = "OTPHub test message: your webhook works. Code 000000."


def test_body(*, received_at: str) -> str:
    """The body of a test delivery (the web console's "Send a test"): a delivery's fields,
    for no activation (``activationId`` 0), marked ``"test": true``."""
    return json.dumps(
        {
            "activationId": 0,
            "service": "test",
            "text": TEST_TEXT,
            "code": "000000",
            "country": 0,
            "receivedAt": received_at,
            "test": True,
        },
        separators=(",", ":"),
    )
