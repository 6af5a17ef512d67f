"""Money as integer minor units of the deployment's one currency.

Amounts live as ``int`` everywhere inside OTPHub. ``Decimal`` is used only at the edge,
to parse what a person typed and to print what a client reads. An amount with more
decimals than the currency has is refused, never rounded: rounding someone's price is
a silent change of a contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal, InvalidOperation

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
            raise InvalidAmount(f"not an amount: {_shown(text)}")
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

    def parse_ceiling(self, text: str) -> int:
        """A customer's price ceiling (getNumber's ``maxPrice``) in minor units, rounded
        down: an offer is affordable when its price is at most this.

        Clients write it as PHP reads a float (``0.5``, ``.5``, ``5e-1``, ``1e3``). What
        cannot be read, and anything negative, is a ceiling of 0: refusing to buy is safer
        than buying without the limit that was meant. The work is bounded whatever the
        text: the exponent is read before any ``Decimal`` arithmetic, so ``1e999999999``
        never becomes an integer of a billion digits (nor a decimal overflow); a ceiling
        above every amount OTPHub can hold is ``MAX_MINOR``, which every offer meets.
        """
        match = _CEILING.fullmatch(text.strip())
        if match is None:
            return 0
        whole, fraction, exponent_text = match.group("whole", "fraction", "exponent")
        significant = (whole + (fraction or "")).lstrip("0")
        if match.group("sign") == "-" or not significant:
            return 0
        exponent = _bounded_exponent(exponent_text)
        mantissa = Decimal(f"{whole or 0}.{fraction or 0}")
        # The power of ten of the first significant digit, without building the number.
        magnitude = mantissa.adjusted() + exponent
        if magnitude > _CEILING_DIGITS:
            return MAX_MINOR
        if magnitude < -self.decimals - 1:
            return 0  # less than one minor unit
        # Exact: the floor on the currency's grid has at most _CEILING_DIGITS + decimals
        # digits, within the context's precision (the default 28 digits would round
        # 0.49999...9 with 30 nines up to 0.50 before the floor is taken).
        value = mantissa.scaleb(exponent, _EXACT).quantize(
            Decimal(1).scaleb(-self.decimals), rounding=ROUND_FLOOR, context=_EXACT
        )
        return min(int(value.scaleb(self.decimals, _EXACT)), MAX_MINOR)

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


# ASCII digits only: ``\d`` would also take Arabic-Indic and fullwidth digits.
_AMOUNT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,12})?")
# Far below 2**53 so that ``json_number`` stays exact and sums never overflow a BIGINT.
MAX_MINOR = 10**15
# maxPrice as PHP's floatval reads it, fully: optional sign, digits with an optional point,
# an optional exponent. The request limits bound the text to 1,024 characters.
_CEILING = re.compile(
    r"(?P<sign>[+-]?)(?=\.?[0-9])(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+))?"
)
# A ceiling whose first digit is at 10**16 or above exceeds MAX_MINOR in every currency.
_CEILING_DIGITS = 16
# Exponents beyond this are "far above or far below any amount" for any mantissa the
# request limits allow (1,024 digits).
_EXPONENT_BOUND = 10**6
# Enough digits for any ceiling of at most _CEILING_DIGITS + 1 integer digits and a few
# decimals, and for a mantissa of up to 1,024 digits moved by scaleb without rounding.
_EXACT = Context(prec=2048, Emax=_EXPONENT_BOUND * 2, Emin=-_EXPONENT_BOUND * 2)


def _shown(text: str) -> str:
    """What an error message quotes of a rejected amount: its start, never 5,000 digits."""
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"


def _bounded_exponent(text: str | None) -> int:
    """The exponent of a ceiling, clamped to +-_EXPONENT_BOUND without reading more than
    its first digits (a 1,000-digit exponent is as cheap as ``e3``)."""
    if text is None:
        return 0
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > len(str(_EXPONENT_BOUND)):
        return sign * _EXPONENT_BOUND
    return sign * min(int(digits), _EXPONENT_BOUND)


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
