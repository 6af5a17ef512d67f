"""The background workers as ``otphub serve`` runs them (poller, follower, and the outbox
worker), left to themselves against a real second OTPHub: the stock appears, a code pushed
at the upstream reaches the customer, and the finish reaches the upstream. The tests wait
for each outcome; nothing here measures time."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator

import pytest

from otphub.workers import outbox as outbox_worker
from otphub.workers import upstream_follower, upstream_poller
from tests.support import Hub
from tests.upstream.conftest import TEST_LIMITS, register
from tests.upstream.second import SecondOtphub
from tests.upstream.test_reselling import ledgers, remote_id


def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if check():
            return
        time.sleep(0.025)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def workers(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[asyncio.Task[None]]]:
    for module, name in (
        (upstream_poller, "ASK_SECONDS"),
        (upstream_follower, "SCAN_SECONDS"),
        (upstream_follower, "POLL_SECONDS"),
        (outbox_worker, "PAUSE"),
    ):
        monkeypatch.setattr(module, name, 0.05)

    async def start() -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(worker(hub.rt))
            for worker in (
                upstream_poller.run_upstream_poller,
                upstream_follower.run_upstream_follower,
                outbox_worker.run_outbox,
            )
        ]

    async def stop(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    tasks = hub.call(start())
    yield tasks
    hub.call(stop(tasks))


def test_the_workers_resell_on_their_own(
    hub: Hub, second: SecondOtphub, workers: list[asyncio.Task[None]]
) -> None:
    assert second.world is not None
    provider = register(hub, second.handler_url, key=second.world.reseller_key, markup_bp=2500)
    # A long-poll of a second at most: an OTPHub upstream answers at once anyway.
    hub.rt.extensions["upstream_limits"] = dataclasses.replace(TEST_LIMITS, status_wait_seconds=1)
    key = hub.customer("5.00")
    eventually(
        lambda: '"count":3' in hub.say(key, "getPrices", country="0", service="tg"),
        "the upstream's stock on sale",
    )
    activation_id, phone = hub.buy(key, country="0")
    second.push_sms(phone, "Telegram code: 31337")
    eventually(
        lambda: hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:31337",
        "the code at the reseller",
    )
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    upstream_id = remote_id(hub, activation_id)
    eventually(
        lambda: second.say("getStatus", id=upstream_id) == "STATUS_CANCEL",
        "the finish at the upstream",
    )
    assert ledgers(hub, second, key, provider) == {
        "customer": "ACCESS_BALANCE:4.50",
        "reseller_owes_upstream_provider": 40,
        "reseller_wallet_there": (960, 0),
        "upstream_provider_earned": 30,
    }
