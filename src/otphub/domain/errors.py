"""Errors. Each protocol error knows the exact word the customer API answers with."""

from __future__ import annotations


class OTPHubError(Exception):
    """Base of every error OTPHub raises on purpose."""


class InvalidInput(OTPHubError):
    """Operator or provider input that is refused before anything changes."""


class InvalidAmount(InvalidInput):
    pass


class NotFound(OTPHubError):
    pass


class SignInRefused(OTPHubError):
    """A console sign-in with an unknown email or a wrong password (which one is not said)."""


class TooManyAttempts(OTPHubError):
    """Too many failed sign-ins for this email or from this address: wait ``retry_after``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} s")
        self.retry_after = retry_after


class SignupClosed(OTPHubError):
    """OTPHUB_SIGNUP=closed: accounts are created by the operator only."""


class EmailTaken(InvalidInput):
    """Another customer or operator signs in with this email already."""


class ProtocolError(OTPHubError):
    """An answer of the customer protocol that is not a success.

    ``word`` is the exact body the client receives (``NO_BALANCE``, ``WRONG_MAX_PRICE:0.50``).
    """

    word: str = "ERROR_SQL"

    def __init__(self, word: str | None = None) -> None:
        if word is not None:
            self.word = word
        super().__init__(self.word)


def _word(name: str) -> type[ProtocolError]:
    return type(name, (ProtocolError,), {"word": name})


NoKey = _word("NO_KEY")
BadKey = _word("BAD_KEY")
BadAction = _word("BAD_ACTION")
BadService = _word("BAD_SERVICE")
BadCountry = _word("BAD_COUNTRY")
BadStatus = _word("BAD_STATUS")
NoNumbers = _word("NO_NUMBERS")
NoBalance = _word("NO_BALANCE")
WrongExceptionPhone = _word("WRONG_EXCEPTION_PHONE")
ChannelsLimit = _word("CHANNELS_LIMIT")
OrderAlreadyExists = _word("ORDER_ALREADY_EXISTS")
NoActivation = _word("NO_ACTIVATION")
NoActivations = _word("NO_ACTIVATIONS")
WrongActivationId = _word("WRONG_ACTIVATION_ID")
EarlyCancelDenied = _word("EARLY_CANCEL_DENIED")
WrongDate = _word("WRONG_DATE")
OperatorsNotFound = _word("OPERATORS_NOT_FOUND")
ErrorSql = _word("ERROR_SQL")


class WrongMaxPrice(ProtocolError):
    """Numbers exist, but the cheapest costs more than the customer's ``maxPrice``."""

    def __init__(self, cheapest: str) -> None:
        super().__init__(f"WRONG_MAX_PRICE:{cheapest}")


class Banned(ProtocolError):
    def __init__(self, until: str) -> None:
        super().__init__(f"BANNED:'{until}'")


class SupplierError(OTPHubError):
    """A supplier-protocol request that is refused with ``{"status": "ERROR"}`` and a 4xx."""

    def __init__(self, message: str, *, http_status: int = 400) -> None:
        super().__init__(message)
        self.http_status = http_status


# Where an answer carries its refusal in the HTTP status (the herosms dialect, API v1, the
# console): the status of each word (the part before any ``:``), and what it means in plain
# language. One table, so that every surface says the same thing.
_REFUSALS: dict[str, tuple[int, str]] = {
    "NO_KEY": (401, "No API key was sent."),
    "BAD_KEY": (401, "The API key is unknown or has been revoked."),
    "BANNED": (403, "This account is blocked until the time given."),
    "BAD_ACTION": (400, "The action is unknown or not supported."),
    "BAD_SERVICE": (400, "The service code is unknown."),
    "BAD_COUNTRY": (400, "The country id is unknown."),
    "BAD_STATUS": (409, "The activation cannot take this status in its current state."),
    "NO_NUMBERS": (404, "No number is available for this service and country right now."),
    "NO_BALANCE": (402, "The balance is too low for this number."),
    "WRONG_MAX_PRICE": (400, "The cheapest number costs more than the maximum price given."),
    "WRONG_EXCEPTION_PHONE": (400, "The excluded phone prefixes are malformed."),
    "CHANNELS_LIMIT": (429, "The account already has its maximum of live activations."),
    "ORDER_ALREADY_EXISTS": (409, "An activation with this order id was bought already."),
    "NO_ACTIVATION": (404, "No such activation."),
    "NO_ACTIVATIONS": (404, "There are no live activations."),
    "WRONG_ACTIVATION_ID": (400, "The activation id is malformed."),
    "EARLY_CANCEL_DENIED": (
        409,
        "An activation cannot be cancelled in the first minutes after purchase.",
    ),
    "WRONG_DATE": (400, "The dates are malformed or more than 30 days apart."),
    "OPERATORS_NOT_FOUND": (404, "No operator is known for this country."),
    "TOO_MANY_REQUESTS": (429, "Too many requests: slow down and retry later."),
    "ERROR_SQL": (500, "An internal error occurred; nothing was changed by it."),
}


def refusal_name(word: str) -> str:
    """``WRONG_MAX_PRICE:0.50`` → ``WRONG_MAX_PRICE``; ``BANNED:'...'`` → ``BANNED``."""
    return word.partition(":")[0]


def http_status(word: str) -> int:
    """The HTTP status of a refusal where one is used (400 for any word not listed)."""
    return _REFUSALS.get(refusal_name(word), (400, ""))[0]


def explain(word: str) -> str:
    """A refusal in plain language, with its parameter where it has one."""
    name, _, detail = word.partition(":")
    text = _REFUSALS.get(name, (400, "The request was refused."))[1]
    if name == "WRONG_MAX_PRICE" and detail:
        return f"{text} The cheapest costs {detail}."
    if name == "BANNED" and detail:
        return f"This account is blocked until {detail.strip(chr(39))}."
    return text


def explained_words() -> list[tuple[str, str]]:
    """Every refusal word with its plain-language meaning (the web console lists them)."""
    return [(word, text) for word, (_status, text) in _REFUSALS.items()]
