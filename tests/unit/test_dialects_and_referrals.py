"""The pure parts of dialects and referrals: names, the referrer's reward, the metrics label
of a herosms refusal."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from otphub.domain import dialects, errors, referrals
from otphub.metrics import answer_label


@pytest.mark.parametrize(
    ("raw", "name"),
    [("sms-activate", "sms-activate"), ("GRIZZLY", "grizzly"), (" herosms ", "herosms")],
)
def test_dialect_names(raw: str, name: str) -> None:
    assert dialects.checked(raw) == name


@pytest.mark.parametrize("raw", ["", "smsactivate", "hero-sms", "5sim"])
def test_an_unknown_dialect_names_the_choices(raw: str) -> None:
    with pytest.raises(errors.InvalidInput, match="sms-activate, grizzly, herosms"):
        dialects.checked(raw)


@pytest.mark.parametrize(
    ("price", "payout", "share", "reward"),
    [
        (100, 40, Decimal(0), 0),
        (100, 40, Decimal(10), 6),
        (100, 40, Decimal("12.5"), 7),  # 7.5, rounded down
        (100, 40, Decimal(100), 60),
        (100, 100, Decimal(50), 0),  # no margin
        (100, 120, Decimal(50), 0),  # a negative margin pays nobody
        (1, 0, Decimal("99.99"), 0),
        (10**15 + 1, 1, Decimal("33.333333333333333333"), 333_333_333_333_333),
    ],
)
def test_reward(price: int, payout: int, share: Decimal, reward: int) -> None:
    assert referrals.reward(price=price, payout=payout, share=share) == reward


def test_codes() -> None:
    codes = {referrals.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(re.fullmatch(r"[a-km-np-z2-9]{10}", c) for c in codes)


def test_a_herosms_refusal_is_labelled_with_its_word() -> None:
    assert answer_label(b'{"title":"NO_BALANCE","details":"..."}') == "NO_BALANCE"
    assert answer_label(b'{"data":[]}') == "json"
    assert answer_label(b"[]") == "json"
    assert answer_label(b"NO_BALANCE") == "NO_BALANCE"
