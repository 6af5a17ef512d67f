"""https deliveries go to the address checked, with the URL's name as the TLS server name,
against which the certificate is checked (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from otphub.domain import webhooks as rules
from otphub.services import webhook_delivery, webhooks
from tests.support import Hub
from tests.webhooks.receiver import Receiver, verify

NAME = "hooks.example.test"


def self_signed(directory: Path, name: str) -> tuple[str, str]:
    """A certificate for ``name`` (its own authority) and its key: (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    return self_signed(tmp_path, NAME)


@pytest.fixture
def tls_receiver(certificate: tuple[str, str]) -> Iterator[Receiver]:
    fake = Receiver(certfile=certificate[0], keyfile=certificate[1]).start()
    yield fake
    fake.stop()


def trusting(hub: Hub, cert_path: str) -> None:
    """The delivery client as production makes it, trusting the test's certificate."""

    async def install() -> None:
        await webhook_delivery.close(hub.rt)
        context = ssl.create_default_context(cafile=cert_path)
        hub.rt.extensions["webhook_client"] = httpx.AsyncClient(
            verify=context,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )

    hub.call(install())


def resolving_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(target: rules.Target) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(webhooks, "resolve", resolve)


@pytest.mark.parametrize(("url_name", "delivered"), [(NAME, True), ("other.example.test", False)])
def test_https_checks_the_certificate_against_the_urls_name(
    hub: Hub,
    tls_receiver: Receiver,
    certificate: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    url_name: str,
    delivered: bool,
) -> None:
    resolving_to_loopback(monkeypatch)
    trusting(hub, certificate[0])
    seller = hub.stocked()
    customer_id, key = hub.customer_id()
    _, phone = hub.buy(key)
    created = hub.call(
        webhooks.add(
            hub.rt, customer_id=customer_id, url=f"https://{url_name}:{tls_receiver.port}/tls"
        )
    )
    assert hub.push_sms(seller, phone, "code 4242", sms_id=1).status_code == 200
    assert hub.call(webhook_delivery.deliver_due(hub.rt)) == 1
    if delivered:
        [request] = tls_receiver.at("tls")
        assert request.headers["host"] == f"{NAME}:{tls_receiver.port}"
        verify(created.secret, request.headers["x-otphub-signature"], request.body)
    else:
        # The certificate names another host: refused before anything is sent.
        assert tls_receiver.requests == []
        [info] = hub.call(webhooks.list_of(hub.rt, customer_id=customer_id))
        assert info.last_error == "transport: ConnectError"
