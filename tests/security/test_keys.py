"""API keys: recognisable, self-checking, several per owner, revocable at once, and never
usable on the other side (a customer key is no provider key and the reverse)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otphub.domain import keys
from otphub.services import accounts
from tests.support import Hub, runtime_for

SECRET = b"k"


def test_keys_have_a_prefix_and_a_valid_checksum() -> None:
    customer = keys.new_key(keys.CUSTOMER_PREFIX)
    provider = keys.new_key(keys.PROVIDER_PREFIX)
    assert customer.startswith("ohc_") and provider.startswith("ohp_")
    assert len(customer) == len(provider) == 40
    assert keys.looks_like_key(customer, keys.CUSTOMER_PREFIX)
    assert not keys.looks_like_key(customer, keys.PROVIDER_PREFIX)
    assert not keys.looks_like_key(provider, keys.CUSTOMER_PREFIX)
    assert keys.hint(customer) == customer[:10]


@given(st.data())
def test_one_changed_character_breaks_the_checksum(data: st.DataObject) -> None:
    key = keys.new_key(keys.CUSTOMER_PREFIX)
    position = data.draw(st.integers(min_value=4, max_value=len(key) - 1))
    replacement = data.draw(st.sampled_from("0123456789abcdefXYZ"))
    changed = key[:position] + replacement + key[position + 1 :]
    if changed != key:
        assert not keys.looks_like_key(changed, keys.CUSTOMER_PREFIX)


def test_the_stored_hash_is_keyed() -> None:
    key = keys.new_key(keys.CUSTOMER_PREFIX)
    assert keys.key_hash(SECRET, key) != keys.key_hash(b"other secret", key)


def test_rotation_add_switch_revoke(hub: Hub) -> None:
    customer_id, first = hub.customer_id("1.00")
    second = hub.call(accounts.add_key(hub.rt, kind="customer", owner_id=customer_id)).key
    assert second != first
    # Both work while the client switches over.
    assert hub.say(first, "getBalance") == "ACCESS_BALANCE:1.00"
    assert hub.say(second, "getBalance") == "ACCESS_BALANCE:1.00"
    listed = hub.call(accounts.list_keys(hub.rt, kind="customer", owner_id=customer_id))
    assert [k.hint for k in listed] == [first[:10], second[:10]]
    assert all(k.revoked_at is None for k in listed)
    hub.call(accounts.revoke_key(hub.rt, kind="customer", key=str(listed[0].id)))
    assert hub.say(first, "getBalance") == "BAD_KEY"
    assert hub.say(second, "getBalance") == "ACCESS_BALANCE:1.00"
    # Revoking by the key itself works too, and twice is harmless.
    hub.call(accounts.revoke_key(hub.rt, kind="customer", key=second))
    hub.call(accounts.revoke_key(hub.rt, kind="customer", key=second))
    assert hub.say(second, "getBalance") == "BAD_KEY"


def test_revocation_is_effective_at_once_on_every_process(hub: Hub) -> None:
    """Another process (its own engine and pool) revokes; this server refuses the key on
    the very next request: every request looks its key up."""
    _, key = hub.customer_id("1.00")
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:1.00"
    other = runtime_for(hub.rt.settings.database_url, hub.clock)

    async def revoke_elsewhere() -> None:
        await other.start(migrate_schema=False)
        try:
            await accounts.revoke_key(other, kind="customer", key=key)
        finally:
            await other.close()

    hub.call(revoke_elsewhere())
    assert hub.say(key, "getBalance") == "BAD_KEY"


def test_a_customer_key_is_no_provider_key_and_the_reverse(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("1.00")
    _, phone = hub.buy(key)
    as_provider = hub.http.post(
        "/agent/api/sms",
        json={"action": "PUSH_SMS", "key": key, "smsId": 1, "phone": int(phone), "text": "1234"},
    )
    assert as_provider.status_code == 401
    assert as_provider.json() == {"status": "ERROR", "error": "bad key"}
    assert hub.say(seller.key, "getBalance") == "BAD_KEY"


def test_a_revoked_provider_key_is_refused(hub: Hub) -> None:
    seller = hub.stocked(count=1)
    key = hub.customer("1.00")
    _, phone = hub.buy(key)
    spare = hub.call(accounts.add_key(hub.rt, kind="provider", owner_id=seller.id)).key
    hub.call(accounts.revoke_key(hub.rt, kind="provider", key=seller.key))
    refused = hub.push_sms(seller, phone, "code 1234")
    assert refused.status_code == 401
    accepted = hub.push_sms(type(seller)(seller.id, spare), phone, "code 1234")
    assert accepted.json() == {"status": "SUCCESS"}


@pytest.mark.parametrize(
    "bad",
    ["", "x", "ohc_", "ohc_" + "A" * 36, "ohp_" + "A" * 36, "' OR 1=1 --", "ohc_" + "é" * 36],
)
def test_malformed_keys_are_bad_keys(hub: Hub, bad: str) -> None:
    expected = "NO_KEY" if bad == "" else "BAD_KEY"
    assert hub.say(bad, "getBalance") == expected


def test_unknown_owner_and_unknown_key(hub: Hub) -> None:
    from otphub.domain import errors

    with pytest.raises(errors.NotFound):
        hub.call(accounts.add_key(hub.rt, kind="customer", owner_id=999))
    with pytest.raises(errors.NotFound):
        hub.call(accounts.revoke_key(hub.rt, kind="customer", key="12345"))
    provider = hub.provider()
    # A provider key id is not a customer key id.
    listed = hub.call(accounts.list_keys(hub.rt, kind="provider", owner_id=provider.id))
    with pytest.raises(errors.NotFound):
        hub.call(accounts.revoke_key(hub.rt, kind="customer", key=str(listed[0].id)))
