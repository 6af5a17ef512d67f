"""The errors of the client: one exception class per word of the protocol.

A refusal arrives in one of three shapes, all turned into the same classes: the plain-text
word of the sms-activate protocol (HTTP 200, ``NO_BALANCE``), the herosms dialect's HTTP
status with ``{"title": WORD, "details": text}``, and API v1's HTTP status with
``{"error": WORD, "message": text}``. ``except NoBalance`` works whichever the server spoke.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


class ClientError(Exception):
    """Base of every error this client raises on purpose."""


class UnexpectedAnswer(ClientError):
    """An answer the client cannot read: not the protocol (a proxy's error page, a server
    of another kind), or a success shape that does not parse. ``body`` is its start."""

    def __init__(self, message: str, *, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:500]


class ProtocolError(ClientError):
    """A refusal of the server. ``word`` is the exact word (``WRONG_MAX_PRICE:0.50``),
    ``name`` the word without its parameter (``WRONG_MAX_PRICE``), ``message`` the server's
    explanation when it gave one (the herosms dialect and API v1 do)."""

    name: str = ""

    def __init__(self, word: str, message: str | None = None) -> None:
        self.word = word
        if not type(self).name:
            self.name = word.partition(":")[0]
        self.message = message
        super().__init__(f"{word}: {message}" if message else word)


class NoKey(ProtocolError):
    name = "NO_KEY"


class BadKey(ProtocolError):
    name = "BAD_KEY"


class Banned(ProtocolError):
    """The account is blocked; ``until`` is the server's time text (``2026-6-1 17-30-57``
    in the protocol, ``2026-06-01 17:30:57`` in API v1), or None when it gave none."""

    name = "BANNED"

    def __init__(self, word: str, message: str | None = None, *, until: str | None = None) -> None:
        super().__init__(word, message)
        detail = word.partition(":")[2].strip().strip("'")
        self.until = until if until is not None else (detail or None)


class BadAction(ProtocolError):
    name = "BAD_ACTION"


class BadService(ProtocolError):
    name = "BAD_SERVICE"


class BadCountry(ProtocolError):
    name = "BAD_COUNTRY"


class BadStatus(ProtocolError):
    name = "BAD_STATUS"


class NoNumbers(ProtocolError):
    name = "NO_NUMBERS"


class NoBalance(ProtocolError):
    name = "NO_BALANCE"


class WrongMaxPrice(ProtocolError):
    """Numbers exist but the cheapest costs ``min_price``, above the maximum price given
    (None when the server did not say how much)."""

    name = "WRONG_MAX_PRICE"

    def __init__(
        self, word: str, message: str | None = None, *, min_price: Decimal | None = None
    ) -> None:
        super().__init__(word, message)
        if min_price is None:
            min_price = _decimal_or_none(word.partition(":")[2])
        self.min_price = min_price


class WrongExceptionPhone(ProtocolError):
    name = "WRONG_EXCEPTION_PHONE"


class ChannelsLimit(ProtocolError):
    name = "CHANNELS_LIMIT"


class OrderAlreadyExists(ProtocolError):
    name = "ORDER_ALREADY_EXISTS"


class NoActivation(ProtocolError):
    name = "NO_ACTIVATION"


class NoActivations(ProtocolError):
    """Raised by no method of this client: getActiveActivations answers an empty list
    instead. Kept so that code matching on the words finds every one."""

    name = "NO_ACTIVATIONS"


class WrongActivationId(ProtocolError):
    name = "WRONG_ACTIVATION_ID"


class EarlyCancelDenied(ProtocolError):
    name = "EARLY_CANCEL_DENIED"


class WrongDate(ProtocolError):
    name = "WRONG_DATE"


class OperatorsNotFound(ProtocolError):
    """Raised by no method of this client: getOperators answers an empty dict instead."""

    name = "OPERATORS_NOT_FOUND"


class ErrorSql(ProtocolError):
    """An internal failure of the server (the protocol's ``ERROR_SQL``)."""

    name = "ERROR_SQL"


class TooManyRequests(ProtocolError):
    """HTTP 429: slow down. ``retry_after`` is the server's ``Retry-After`` in seconds."""

    name = "TOO_MANY_REQUESTS"

    def __init__(
        self, word: str = "TOO_MANY_REQUESTS", message: str | None = None, *,
        retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(word, message)
        self.retry_after = retry_after


class BadRequest(ProtocolError):
    """API v1: a malformed body or parameter (``details`` lists what was wrong)."""

    name = "BAD_REQUEST"

    def __init__(
        self, word: str = "BAD_REQUEST", message: str | None = None, *,
        details: list[object] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(word, message)
        self.details = details or []


class IdempotencyKeyReused(ProtocolError):
    """API v1: the Idempotency-Key was used before with another body."""

    name = "IDEMPOTENCY_KEY_REUSED"


class ActivationCancelled(ProtocolError):
    """``wait_for_code``: the activation ended without giving a code. On the sms-activate
    protocol ``STATUS_CANCEL`` means cancelled *or* finished (it does not tell them apart);
    on API v1 it is only raised for a cancelled one."""

    name = "STATUS_CANCEL"

    def __init__(self, word: str = "STATUS_CANCEL", message: str | None = None, *,
                 activation_id: int | None = None) -> None:  # fmt: skip
        super().__init__(word, message)
        self.activation_id = activation_id


class WaitTimeout(ClientError, TimeoutError):
    """``wait_for_code``: no code came within the timeout (the activation may still get one)."""

    def __init__(self, activation_id: int, timeout: float) -> None:
        super().__init__(f"no code for activation {activation_id} within {timeout:g} s")
        self.activation_id = activation_id
        self.timeout = timeout


ERROR_CLASSES: dict[str, type[ProtocolError]] = {
    cls.name: cls
    for cls in (
        NoKey, BadKey, Banned, BadAction, BadService, BadCountry, BadStatus, NoNumbers,
        NoBalance, WrongMaxPrice, WrongExceptionPhone, ChannelsLimit, OrderAlreadyExists,
        NoActivation, NoActivations, WrongActivationId, EarlyCancelDenied, WrongDate,
        OperatorsNotFound, ErrorSql, TooManyRequests, BadRequest, IdempotencyKeyReused,
    )
}  # fmt: skip


def error_for(word: str, message: str | None = None) -> ProtocolError:
    """The exception of a refusal word (``ProtocolError`` itself for a word not known)."""
    cls = ERROR_CLASSES.get(word.partition(":")[0], ProtocolError)
    return cls(word, message)


def is_error_word(body: str) -> bool:
    """Whether a text answer is one of the protocol's refusal words."""
    name = body.partition(":")[0]
    return name in ERROR_CLASSES and (name == body or name in ("BANNED", "WRONG_MAX_PRICE"))


def _decimal_or_none(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None
