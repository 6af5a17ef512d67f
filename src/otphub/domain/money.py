"""Money as integer minor units of the deployment's one currency.

Amounts live as ``int`` everywhere inside OTPHub. ``Decimal`` is used only at the edge,
to parse what a person typed and to print what a client reads. An amount with more
decimals than the currency has is refused, never rounded: rounding someone's price is
a silent change of a contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from otphub.domain.errors import InvalidAmount


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    numeric: int
    decimals: int

    @property
    def scale(self) -> int:
        return int(10**self.decimals)

    def parse(self, text: str, *, allow_zero: bool = False) -> int:
        """Parse ``"12.50"`` into minor units (1250); refuse anything inexact."""
        minor = self.parse_signed(text)
        if minor < 0 or (minor == 0 and not allow_zero):
            raise InvalidAmount(f"amount must be {'>= 0' if allow_zero else '> 0'}: {text!r}")
        return minor

    def parse_signed(self, text: str) -> int:
        raw = text.strip()
        if not _AMOUNT.fullmatch(raw):
            raise InvalidAmount(f"not an amount: {text!r}")
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:  # pragma: no cover - the regex already filters
            raise InvalidAmount(f"not an amount: {text!r}") from exc
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > self.decimals and value != value.quantize(Decimal(1).scaleb(-self.decimals)):
            raise InvalidAmount(
                f"{text!r} has more decimals than {self.code} allows ({self.decimals})"
            )
        minor = value.scaleb(self.decimals)
        if minor != minor.to_integral_value():  # pragma: no cover - guarded above
            raise InvalidAmount(f"{text!r} is not a whole number of minor units")
        if abs(minor) > MAX_MINOR:
            raise InvalidAmount(f"{text!r} is too large")
        return int(minor)

    def format(self, minor: int) -> str:
        """``1250`` -> ``"12.50"``: always exactly the currency's decimals."""
        if self.decimals == 0:
            return str(minor)
        sign = "-" if minor < 0 else ""
        whole, frac = divmod(abs(minor), self.scale)
        return f"{sign}{whole}.{frac:0{self.decimals}d}"

    def json_number(self, minor: int) -> float:
        """The amount as a JSON number (``12.5``).

        The protocol wants money as JSON numbers. A ``float`` built from the exact decimal
        string is the double nearest to it, and Python's ``repr`` prints the shortest string
        that round-trips, which for amounts below 2**53 minor units with at most a few
        decimals is exactly the decimal we started from. So nothing is rounded here; the
        float exists only for the JSON encoder.
        """
        return float(self.format(minor))


_AMOUNT = re.compile(r"-?\d{1,15}(\.\d{1,12})?")
# Far below 2**53 so that ``json_number`` stays exact and sums never overflow a BIGINT.
MAX_MINOR = 10**15

# ISO 4217: code -> (numeric, minor-unit digits). The deployment picks one.
ISO_4217: dict[str, tuple[int, int]] = {
    "USD": (840, 2),
    "EUR": (978, 2),
    "GBP": (826, 2),
    "RUB": (643, 2),
    "UAH": (980, 2),
    "KZT": (398, 2),
    "CNY": (156, 2),
    "INR": (356, 2),
    "IDR": (360, 2),
    "BRL": (986, 2),
    "TRY": (949, 2),
    "PLN": (985, 2),
    "VND": (704, 0),
    "JPY": (392, 0),
    "KRW": (410, 0),
    "KWD": (414, 3),
    "BHD": (48, 3),
}


def currency(code: str) -> Currency:
    try:
        numeric, decimals = ISO_4217[code.upper()]
    except KeyError as exc:
        known = ", ".join(sorted(ISO_4217))
        raise ValueError(f"unknown currency {code!r}; known: {known}") from exc
    return Currency(code=code.upper(), numeric=numeric, decimals=decimals)
