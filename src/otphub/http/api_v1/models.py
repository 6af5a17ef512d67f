"""API v1's request and response bodies. They validate what arrives and describe every
answer in the OpenAPI document; the activation's shape itself is built by
``http/activation_json.py`` (one shape for API v1 and the event stream), which
``Activation`` here describes field for field."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Refusal(BaseModel):
    error: str = Field(examples=["NO_NUMBERS"])
    message: str = Field(examples=["No number is available for this service and country."])
    min_price: float | None = Field(
        default=None, description="WRONG_MAX_PRICE only: the cheapest price there is."
    )
    until: str | None = Field(
        default=None, description="BANNED only: `YYYY-MM-DD HH:MM:SS`, the deployment's time."
    )


class BadRequest(BaseModel):
    error: Literal["BAD_REQUEST"]
    message: str
    details: list[dict[str, str]] = Field(
        description="One entry per problem: `field` (where) and `message` (what)."
    )


class Balance(BaseModel):
    balance: float = Field(examples=[12.5])
    currency: str = Field(examples=["USD"])


class Offer(BaseModel):
    service: str = Field(examples=["tg"])
    country: int = Field(examples=[0])
    price: float = Field(examples=[0.5])
    count: int = Field(description="Free numbers at this price.", examples=[80])


class Offers(BaseModel):
    offers: list[Offer]


class NewActivation(BaseModel):
    """What to buy. Only ``service`` is required."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=16, examples=["tg"])
    country: int = Field(default=0, ge=0, examples=[0])
    operator: str | None = Field(
        default=None, max_length=200, description="An operator, or several separated by commas."
    )
    max_price: Decimal | None = Field(
        default=None, ge=0, description="Refuse (WRONG_MAX_PRICE) rather than pay more."
    )
    provider_ids: list[int] | None = Field(default=None, max_length=100)
    except_provider_ids: list[int] | None = Field(default=None, max_length=100)
    phone_exception: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Phone prefixes not wanted (with or without the country code).",
    )
    ref: str | None = Field(default=None, max_length=200, description="A referral code.")


State = Literal["waiting", "code", "retry", "finished", "cancelled"]


class Activation(BaseModel):
    id: int
    phone: str = Field(examples=["79001234567"])
    service: str = Field(examples=["tg"])
    country: int
    operator: str = Field(examples=["any"])
    price: float = Field(examples=[0.5])
    currency: str = Field(examples=["USD"])
    state: State
    status: str = Field(
        description="What the protocol's getStatus answers now.", examples=["STATUS_OK:48213"]
    )
    code: str | None
    sms_text: str | None
    sms_at: str | None = Field(description="ISO 8601, UTC.")
    created_at: str = Field(description="ISO 8601, UTC.", examples=["2026-06-01T17:30:57Z"])
    expires_at: str = Field(description="ISO 8601, UTC.")
    ended_at: str | None = Field(description="ISO 8601, UTC.")


class Activations(BaseModel):
    activations: list[Activation]


class Sms(BaseModel):
    id: int
    text: str
    code: str
    received_at: str = Field(description="ISO 8601, UTC.")


class SmsList(BaseModel):
    sms: list[Sms]


class NewWebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, examples=["https://example.com/otp"])


class Webhook(BaseModel):
    id: int
    url: str
    created_at: str = Field(description="ISO 8601, UTC.")


class Webhooks(BaseModel):
    webhooks: list[Webhook]


class NewWebhook(BaseModel):
    id: int
    url: str
    secret: str = Field(description="Shown once: verifies `X-OTPHub-Signature`.")
