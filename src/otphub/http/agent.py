"""``POST /agent/api/sms``: providers push every SMS their numbers receive (SMSHub PUSH_SMS).

``SUCCESS`` is answered only after the SMS is committed. The agent resends until it sees
``SUCCESS``; the (provider, smsId) unique key makes a repeat harmless.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response

from otphub.domain import errors
from otphub.domain.numbers import INT64_MAX, parse_whole
from otphub.domain.phones import normalize_phone
from otphub.http.answers import json_answer
from otphub.services import accounts, lifecycle
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.agent")

MAX_BODY = 64 * 1024
MAX_PHONE_FROM = 64  # a sender name; longer ones are cut, never refused (agents would resend)


def _error(message: str, status_code: int) -> Response:
    return json_answer({"status": "ERROR", "error": message}, status_code=status_code)


def _integer(body: dict[str, Any], name: str) -> int:
    """A non-negative BIGINT: JSON numbers per the protocol; strings of ASCII digits are
    tolerated; booleans are not numbers."""
    value = body.get(name)
    if isinstance(value, str):
        value = parse_whole(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise errors.SupplierError(f"{name} must be a whole number from 0 to 2**63-1")
    return value


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise errors.SupplierError("body too large", http_status=413)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        # Bounded: a few compressed kilobytes must not expand into gigabytes.
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, MAX_BODY + 1)
        except zlib.error as exc:
            raise errors.SupplierError("body is not valid gzip") from exc
        if len(raw) > MAX_BODY or inflater.unconsumed_tail:
            raise errors.SupplierError("body too large", http_status=413)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.SupplierError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise errors.SupplierError("body must be a JSON object")
    return body


async def push_sms(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        body = await _body(request)
        key = body.get("key")
        provider = await accounts.authenticate_provider(rt, key if isinstance(key, str) else None)
        if body.get("action", "PUSH_SMS") != "PUSH_SMS":
            raise errors.SupplierError("unknown action")
        sms_id = _integer(body, "smsId")
        try:
            phone = normalize_phone(str(_integer(body, "phone")))
        except errors.InvalidInput as exc:
            raise errors.SupplierError("phone must be a phone number with country code") from exc
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise errors.SupplierError("text must be a non-empty string")
        phone_from = body.get("phoneFrom")
        result = await lifecycle.ingest_sms(
            rt,
            provider=provider,
            provider_sms_id=sms_id,
            phone=phone,
            phone_from=phone_from[:MAX_PHONE_FROM] if isinstance(phone_from, str) else None,
            text=text,
        )
    except errors.SupplierError as refusal:
        return _error(str(refusal), refusal.http_status)
    except Exception:
        log.exception("push_sms_failure")
        return _error("internal error, retry later", 503)
    log.debug(
        "sms_stored", duplicate=result.sms_id is None, matched=result.activation_id is not None
    )
    return json_answer({"status": "SUCCESS"})
