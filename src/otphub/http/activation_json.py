"""An activation and its SMS as API v1 and the event stream show them: one shape for both.

Names in snake_case, money as JSON numbers in the deployment's currency, times as ISO 8601
in UTC (``2026-06-01T17:30:57Z``): new integrations parse them without knowing the
deployment's time zone, unlike the protocol's ``YYYY-MM-DD HH:MM:SS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from otphub.domain.activation import Activation, status_answer
from otphub.services.runtime import Runtime


def iso(unix: int | None) -> str | None:
    if unix is None:
        return None
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def activation_json(rt: Runtime, act: Activation) -> dict[str, Any]:
    return {
        "id": act.id,
        "phone": act.phone,
        "service": act.service,
        "country": act.country_id,
        "operator": act.operator or "any",
        "price": rt.money.json_number(act.price),
        "currency": rt.settings.currency,
        "state": act.state.value,  # waiting, code, retry, finished, cancelled
        "status": status_answer(act.state, act.code),  # what getStatus answers
        "code": act.code,
        "sms_text": act.sms_text,
        "sms_at": iso(act.sms_at),
        "created_at": iso(act.created_at),
        "expires_at": iso(act.expires_at),
        "ended_at": iso(act.ended_at),
    }


def sms_json(*, sms_id: int, text: str, code: str, received_at: int) -> dict[str, Any]:
    return {"id": sms_id, "text": text, "code": code, "received_at": iso(received_at)}
