"""The hot path's shortcuts give exactly the answers of what they stand in for."""

import gc
import hashlib
import hmac
import tracemalloc
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otphub.domain import keys
from otphub.http.params import _query_pairs

# Query strings as clients send them: names and values, with and without escapes.
_QUERY_CHARS = st.sampled_from([*"aAzZ09_-.=&%+ ;~", "%20", "%3D", "%26", "%zz", "é"])


@given(st.lists(_QUERY_CHARS, max_size=40).map("".join))
def test_query_split_is_parse_qsl(query: str) -> None:
    assert _query_pairs(query) == parse_qsl(query, keep_blank_values=True)


def test_query_split_on_a_typical_poll() -> None:
    query = "api_key=ohc_abc&action=getStatus&id=12&&flag&empty="
    assert _query_pairs(query) == [
        ("api_key", "ohc_abc"),
        ("action", "getStatus"),
        ("id", "12"),
        ("flag", ""),
        ("empty", ""),
    ]


SECRET = b"s" * 32


def test_presented_digest_is_the_key_hash_of_a_well_formed_key() -> None:
    key = keys.new_key(keys.CUSTOMER_PREFIX)
    assert keys.presented_digest(SECRET, key, keys.CUSTOMER_PREFIX) == keys.key_hash(SECRET, key)
    # Asked again (from the cache): the same.
    assert keys.presented_digest(SECRET, key, keys.CUSTOMER_PREFIX) == keys.key_hash(SECRET, key)
    # Another secret, another digest: the secret is part of what is cached on.
    assert keys.presented_digest(b"t" * 32, key, keys.CUSTOMER_PREFIX) != keys.key_hash(SECRET, key)


def test_presented_digest_refuses_what_cannot_be_a_key_of_that_kind() -> None:
    customer = keys.new_key(keys.CUSTOMER_PREFIX)
    assert keys.presented_digest(SECRET, customer, keys.PROVIDER_PREFIX) is None
    mistyped = customer[:-1] + ("A" if customer[-1] != "A" else "B")
    assert keys.presented_digest(SECRET, mistyped, keys.CUSTOMER_PREFIX) is None
    assert keys.presented_digest(SECRET, "not a key", keys.CUSTOMER_PREFIX) is None


def test_key_hash_is_hmac_sha256_hex() -> None:
    key = keys.new_key(keys.PROVIDER_PREFIX)
    expected = hmac.new(SECRET, key.encode(), hashlib.sha256).hexdigest()
    assert keys.key_hash(SECRET, key) == expected


def test_presented_strings_are_not_kept_before_their_shape_is_checked() -> None:
    """A provider key may arrive 60 KB long (a JSON body holds up to 64 KiB). The key
    cache once took every presented string before checking its shape: 300 such keys grew
    the process by 18 MB. Length, shape and checksum now come first."""
    presented = keys.new_key(keys.PROVIDER_PREFIX)
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300):
            huge = f"ohp_{n:08d}" + "x" * (60 * 1024)
            assert keys.presented_digest(SECRET, huge, keys.PROVIDER_PREFIX) is None
        # A well-formed key still gets its digest (and is the one kept).
        assert keys.presented_digest(SECRET, presented, keys.PROVIDER_PREFIX) is not None
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 256 * 1024, f"{kept / 1024:.0f} KiB kept"


def test_keys_of_other_lengths_never_pass() -> None:
    key = keys.new_key(keys.CUSTOMER_PREFIX)
    assert keys.looks_like_key(key, keys.CUSTOMER_PREFIX)
    for other in (key + "0", key[:-1], key + "A" * 1000):
        assert not keys.looks_like_key(other, keys.CUSTOMER_PREFIX)


def test_no_hmac_under_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="no server secret"):
        keys.key_hash(b"", keys.new_key(keys.CUSTOMER_PREFIX))


def test_only_checked_keys_are_kept_and_at_most_a_bounded_number() -> None:
    """The digest of a key that passed its checks is kept, so that the checks and the HMAC
    run once per key; a string of the right length with a wrong checksum is only looked
    up, never stored, and valid keys beyond the bound push out the oldest."""
    keys._known.clear()
    good = keys.new_key(keys.CUSTOMER_PREFIX)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert keys.presented_digest(SECRET, bad, keys.CUSTOMER_PREFIX) is None
    assert keys._known == {}
    assert keys.presented_digest(SECRET, good, keys.CUSTOMER_PREFIX) == keys.key_hash(SECRET, good)
    assert list(keys._known) == [(SECRET, good, keys.CUSTOMER_PREFIX)]
    # A customer key presented as a provider's is refused even once it is known.
    assert keys.presented_digest(SECRET, good, keys.PROVIDER_PREFIX) is None
    for _ in range(keys._KNOWN_MAX + 10):
        keys.presented_digest(SECRET, keys.new_key(keys.PROVIDER_PREFIX), keys.PROVIDER_PREFIX)
    assert len(keys._known) == keys._KNOWN_MAX
    assert (SECRET, good, keys.CUSTOMER_PREFIX) not in keys._known
