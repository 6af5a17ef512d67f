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
