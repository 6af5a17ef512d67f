"""The upstream client and poller against a real second OTPHub (``otphub serve`` in a
subprocess): what OTPHub answers as an upstream is what the client reads."""

from __future__ import annotations

import pytest

from otphub.domain.supply import NoRemoteNumbers, NumberRequest, RemoteProvider
from otphub.domain.upstream_protocol import RemoteState
from otphub.services import upstream_stock, upstreams
from tests.support import Hub
from tests.upstream.conftest import register
from tests.upstream.second import SecondOtphub


def connect(hub: Hub, second: SecondOtphub, **markup: int) -> RemoteProvider:
    assert second.world is not None
    return register(hub, second.handler_url, key=second.world.reseller_key, **markup)


def buy(hub: Hub, provider: RemoteProvider, *, cost: int = 40) -> tuple[str, str]:
    request = NumberRequest(
        purchase_id=1,
        service="tg",
        country_id=0,
        operator="any",
        payout=cost,
        excluded_prefixes=(),
    )
    got = hub.call(upstreams.get_number(hub.rt, provider, request))
    return got.remote_id, got.phone


def test_prices_and_balance_of_an_otphub_upstream(hub: Hub, second: SecondOtphub) -> None:
    provider = connect(hub, second, markup_bp=2500)
    hub.clock.advance(60)
    assert hub.call(upstream_stock.poll_due(hub.rt)) == 1
    lines = hub.call(upstream_stock.stock(hub.rt, provider_id=provider.id))
    assert [(x.country_id, x.service, x.count, x.cost) for x in lines] == [(0, "tg", 3, 40)]
    terms = hub.call(upstream_stock.terms(hub.rt, provider_id=provider.id))[provider.id]
    assert terms.remote_balance == 1000


def test_a_whole_activation_through_the_client(hub: Hub, second: SecondOtphub) -> None:
    provider = connect(hub, second)
    remote_id, phone = buy(hub, provider)
    assert phone in second.world.phones  # type: ignore[union-attr]
    status = hub.call(upstreams.get_status(hub.rt, provider, remote_id=remote_id))
    assert status.state is RemoteState.WAITING
    # The balance there was read again after the purchase: 10.00 - 0.40 held.
    terms = hub.call(upstream_stock.terms(hub.rt, provider_id=provider.id))[provider.id]
    assert terms.remote_balance == 960
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 1}))
    second.push_sms(phone, "Telegram code: 58213")
    status = hub.call(upstreams.get_status(hub.rt, provider, remote_id=remote_id, wait=1))
    assert (status.state, status.code) == (RemoteState.CODE, "58213")
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 3}))
    status = hub.call(upstreams.get_status(hub.rt, provider, remote_id=remote_id))
    assert (status.state, status.code) == (RemoteState.RETRY, "58213")
    second.push_sms(phone, "Telegram code: 11223")
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 6}))
    # Again (the outbox delivers at least once): harmless.
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 6}))
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 8}))
    status = hub.call(upstreams.get_status(hub.rt, provider, remote_id=remote_id))
    assert status.state is RemoteState.ENDED
    assert hub.call(upstreams.ended_code(hub.rt, provider, remote_id=remote_id)) == "11223"
    assert second.reseller_balance() == 960
    assert second.provider_payable() == 30


def test_cancel_through_the_client(hub: Hub, second: SecondOtphub) -> None:
    provider = connect(hub, second)
    remote_id, _ = buy(hub, provider)
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 8}))
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 8}))
    hub.call(upstreams.deliver_status(hub.rt, provider, {"id": remote_id, "status": 6}))
    assert hub.call(upstreams.ended_code(hub.rt, provider, remote_id=remote_id)) is None
    assert second.reseller_balance() == 1000
    assert second.provider_payable() == 0


def test_a_price_rise_there_is_no_number_here(hub: Hub, second: SecondOtphub) -> None:
    provider = connect(hub, second)
    with pytest.raises(NoRemoteNumbers):  # WRONG_MAX_PRICE there
        buy(hub, provider, cost=39)
    assert second.reseller_balance() == 1000
