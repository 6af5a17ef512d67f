"""A Python client for OTPHub and any service of the sms-activate protocol.

- ``SmsActivateClient`` / ``AsyncSmsActivateClient``: the ``handler_api.php`` protocol
  (OTPHub or any compatible service), typed results, ``wait_for_code`` with OTPHub's
  long-poll (``wait=``) where the server has it and polling where it does not.
- ``OTPHubClient`` / ``AsyncOTPHubClient``: OTPHub's JSON API v1, with the event stream
  (``events``, ``wait_for_code``).

Every refusal is a ``ProtocolError`` subclass named after its word (``NoBalance`` for
``NO_BALANCE``), whichever protocol or dialect the server answered in. This package imports
httpx and the standard library only: it is usable without the rest of OTPHub.
"""

from otphub.client.errors import (
    ActivationCancelled,
    BadAction,
    BadCountry,
    BadKey,
    BadRequest,
    BadService,
    BadStatus,
    Banned,
    ChannelsLimit,
    ClientError,
    EarlyCancelDenied,
    ErrorSql,
    IdempotencyKeyReused,
    NoActivation,
    NoActivations,
    NoBalance,
    NoKey,
    NoNumbers,
    OperatorsNotFound,
    OrderAlreadyExists,
    ProtocolError,
    TooManyRequests,
    UnexpectedAnswer,
    WaitTimeout,
    WrongActivationId,
    WrongDate,
    WrongExceptionPhone,
    WrongMaxPrice,
)
from otphub.client.otphub import AsyncOTPHubClient, OTPHubClient
from otphub.client.results import (
    ActiveActivation,
    Country,
    FullSms,
    HistoryEntry,
    Number,
    NumberV2,
    Price,
    Service,
    Sms,
    State,
    Status,
    StatusV2,
    TopCountry,
)
from otphub.client.sms_activate import AsyncSmsActivateClient, SmsActivateClient
from otphub.client.v1 import Activation, Balance, Event, Message, NewWebhook, Offer, Webhook

__all__ = [
    "Activation",
    "ActivationCancelled",
    "ActiveActivation",
    "AsyncOTPHubClient",
    "AsyncSmsActivateClient",
    "BadAction",
    "BadCountry",
    "BadKey",
    "BadRequest",
    "BadService",
    "BadStatus",
    "Balance",
    "Banned",
    "ChannelsLimit",
    "ClientError",
    "Country",
    "EarlyCancelDenied",
    "ErrorSql",
    "Event",
    "FullSms",
    "HistoryEntry",
    "IdempotencyKeyReused",
    "Message",
    "NewWebhook",
    "NoActivation",
    "NoActivations",
    "NoBalance",
    "NoKey",
    "NoNumbers",
    "Number",
    "NumberV2",
    "OTPHubClient",
    "Offer",
    "OperatorsNotFound",
    "OrderAlreadyExists",
    "Price",
    "ProtocolError",
    "Service",
    "Sms",
    "SmsActivateClient",
    "State",
    "Status",
    "StatusV2",
    "TooManyRequests",
    "TopCountry",
    "UnexpectedAnswer",
    "WaitTimeout",
    "Webhook",
    "WrongActivationId",
    "WrongDate",
    "WrongExceptionPhone",
    "WrongMaxPrice",
]  # fmt: skip
