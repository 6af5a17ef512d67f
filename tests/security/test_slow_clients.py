"""Slow clients: a body promised and never sent, or trickled, is answered 408 and the
connection closed once ``OTPHUB_BODY_TIMEOUT`` has passed, on the customer API and on the
agent endpoint; the answer is clean (no trace) and nothing changes.

Over a raw socket to the live server, since an HTTP client library would never send less
than it announces. (Slow headers are the HTTP server's business: ``tests/ops``.)
"""

from __future__ import annotations

import socket

import pytest

from tests.support import Hub

# A small deadline for the test; the socket's own timeout is far longer, so that a server
# that waits for the body forever fails the test instead of hanging it.
BODY_TIMEOUT = 0.5
SOCKET_TIMEOUT = 15.0
pytestmark = pytest.mark.parametrize("hub_settings", [{"body_timeout": BODY_TIMEOUT}])


def head(path: str, content_type: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def exchange(hub: Hub, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", hub.live.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(payload)
        return read_until_closed(sock)


def test_a_body_promised_and_not_sent_is_answered_408(hub: Hub) -> None:
    key = hub.customer("10.00")
    form = f"api_key={key}&action=getBalance".encode()
    answer = exchange(
        hub,
        head("/stubs/handler_api.php", "application/x-www-form-urlencoded", 1000) + form[:1],
    )
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in status.lower()
    assert b"content-type: text/plain; charset=utf-8" in status.lower()
    assert body == b"REQUEST_TIMEOUT"
    # The same request in full is served as usual.
    assert exchange(
        hub,
        head(
            "/stubs/handler_api.php",
            "application/x-www-form-urlencoded",
            len(form),
            extra="Connection: close\r\n",
        )
        + form,
    ).endswith(b"ACCESS_BALANCE:10.00")


def test_an_sms_push_promised_and_not_sent_is_answered_408_and_not_stored(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    push = (
        f'{{"action":"PUSH_SMS","key":"{seller.key}","smsId":5,"phone":{phone},'
        f'"text":"Your code: 48213"}}'
    ).encode()
    answer = exchange(hub, head("/agent/api/sms", "application/json", len(push) + 1) + push)
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408 "), answer
    assert body == b'{"status":"ERROR","error":"body not received in time"}'
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"


def test_the_deadline_is_for_the_whole_body_not_each_piece(hub: Hub) -> None:
    """A byte every tenth of a second never lets a per-read timer expire; the body's
    deadline still does. The server closes while bytes keep coming, so the kernel may
    answer the next byte with a reset that overtakes the 408: either is the server letting
    go; what must not happen is the client keeping the connection to the end."""
    with socket.create_connection(("127.0.0.1", hub.live.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(head("/stubs/handler_api.php", "application/x-www-form-urlencoded", 10_000))
        sock.settimeout(0.1)
        received = b""
        let_go = False
        for _ in range(int(SOCKET_TIMEOUT / 0.1)):
            try:
                if not received:
                    sock.send(b"a")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset: closed by the server
                let_go = True
                break
            if not chunk:
                let_go = True
                break
            received += chunk
        assert let_go, "the server kept reading the trickled body"
        # Whatever came before the close is the 408.
        if received:
            assert received.startswith(b"HTTP/1.1 408 "), received
            assert received.endswith(b"REQUEST_TIMEOUT"), received
