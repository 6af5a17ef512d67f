"""Fixtures of the webhook tests: a receiver on 127.0.0.1 per test, and a deployment that
allows private addresses (the receiver's) unless a test says otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    fake = Receiver().start()
    yield fake
    fake.stop()
