"""Fixtures of the upstream tests: a fake upstream on 127.0.0.1, and the test deployment's
provider that buys there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from otphub.domain.supply import RemoteProvider
from otphub.services import accounts, suppliers, upstreams
from tests.support import Hub
from tests.upstream.fake import FakeUpstream
from tests.upstream.second import SecondOtphub

# Short bounds, so that a timeout costs the tests a fraction of a second.
TEST_LIMITS = upstreams.Limits(
    connect_seconds=1.0,
    read_seconds=0.5,
    total_seconds=0.8,
    prices_bytes=64 * 1024,
    prices_seconds=1.0,
    answer_bytes=1024,
    calls_in_flight=2,
)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakeUpstream) -> Iterator[FakeUpstream]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def register(
    hub: Hub, url: str, *, key: str = "upstream-key", markup_bp: int = 0, markup_amount: int = 0
) -> RemoteProvider:
    hub.rt.extensions["upstream_limits"] = TEST_LIMITS
    created = hub.call(
        accounts.add_provider(
            hub.rt,
            name=f"upstream-{uuid.uuid4().hex[:6]}",
            upstream_url=url,
            upstream_key=key,
            markup_bp=markup_bp,
            markup_amount=markup_amount,
        )
    )
    provider = hub.call(suppliers.remote_provider(hub.rt, created.id))
    assert provider is not None
    return provider


@pytest.fixture
def upstream(hub: Hub, fake: FakeUpstream) -> RemoteProvider:
    """The deployment's upstream provider, at the fake upstream."""
    return register(hub, fake.url)


@pytest.fixture(scope="session")
def second_otphubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SecondOtphub]]:
    """One upstream OTPHub per database kind, started when a test first needs it."""
    started: dict[str, SecondOtphub] = {}
    try:
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def second(
    backend: str,
    second_otphubs: dict[str, SecondOtphub],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[SecondOtphub]:
    """The upstream OTPHub on the test's database kind, with a fresh world in it."""
    server = second_otphubs.get(backend)
    if server is None:
        if backend == "postgresql":
            request.getfixturevalue("pg_url")  # skips loudly, or fails under CI, without it
        server = SecondOtphub(backend, tmp_path_factory.mktemp(f"upstream-{backend}"))
        server.start()
        second_otphubs[backend] = server
    server.new_world()
    yield server
    server.assert_audit_clean()
