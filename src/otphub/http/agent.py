"""``POST /agent/api/sms``: providers push every SMS their numbers receive (SMSHub PUSH_SMS).

``SUCCESS`` is answered only after the SMS is committed. The agent resends until it sees
``SUCCESS``; the (provider, smsId) unique key makes a repeat harmless.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response

from otphub import metrics
from otphub.domain import errors
from otphub.domain.numbers import INT64_MAX, parse_whole
from otphub.domain.phones import normalize_phone
from otphub.http import limits
from otphub.http.answers import json_answer
from otphub.http.limits import Limiter
from otphub.services import accounts, lifecycle
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.agent")

MAX_BODY = limits.MAX_BODY
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


def _bounded_int(text: str) -> int | float:
    """A JSON integer: read only if it can be a BIGINT (19 digits and a sign); a longer one
    stands as infinity, which ``_integer`` refuses with the field's name. Reading a
    64 KiB integer costs seconds of CPU where the interpreter's digit limit is off."""
    return int(text) if len(text) <= 20 else math.inf


def _storable(value: object) -> object:
    """NUL and lone surrogates cannot be stored (PostgreSQL text, UTF-8): U+FFFD instead."""
    if not isinstance(value, str):
        return value
    return re.sub("[\x00\ud800-\udfff]", "\ufffd", value)


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
        body = json.loads(raw, parse_int=_bounded_int)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.SupplierError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise errors.SupplierError("body must be a JSON object")
    return body


async def _authenticate(
    rt: Runtime, limiter: Limiter, ip: str, body: dict[str, Any]
) -> accounts.Provider:
    key = body.get("key")
    try:
        return await accounts.authenticate_provider(rt, key if isinstance(key, str) else None)
    except errors.SupplierError as refusal:
        # Counted only once a key has failed: a valid key is never refused for what
        # others at the same address sent.
        if refusal.http_status == 401:
            blocked = limiter.failed_auth(ip)
            if blocked:
                raise AuthFailuresBlocked(blocked) from refusal
        raise


class AuthFailuresBlocked(Exception):
    """Too many failed authentications from this address: 429 with Retry-After."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def push_sms(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    limiter: Limiter = request.app.state.limiter
    ip = request.client.host if request.client else "-"
    try:
        body = await _body(request)
        provider = await _authenticate(rt, limiter, ip, body)
        if body.get("action", "PUSH_SMS") != "PUSH_SMS":
            raise errors.SupplierError("unknown action")
        sms_id = _integer(body, "smsId")
        try:
            phone = normalize_phone(str(_integer(body, "phone")))
        except errors.InvalidInput as exc:
            raise errors.SupplierError("phone must be a phone number with country code") from exc
        text = _storable(body.get("text"))
        if not isinstance(text, str) or not text:
            raise errors.SupplierError("text must be a non-empty string")
        phone_from = _storable(body.get("phoneFrom"))
        result = await lifecycle.ingest_sms(
            rt,
            provider=provider,
            provider_sms_id=sms_id,
            phone=phone,
            phone_from=phone_from[:MAX_PHONE_FROM] if isinstance(phone_from, str) else None,
            text=text,
        )
    except AuthFailuresBlocked as blocked:
        metrics.RATE_LIMITED.labels("auth_failures").inc()
        response = _error("too many failed authentications", 429)
        response.headers["Retry-After"] = limits.retry_after(blocked.seconds)
        return response
    except errors.SupplierError as refusal:
        metrics.SMS_PUSHES.labels("refused").inc()
        if rt.settings.log_requests != "none":
            log.info("sms_push_refused", status=refusal.http_status, reason=str(refusal), ip=ip)
        return _error(str(refusal), refusal.http_status)
    except Exception:
        log.exception("push_sms_failure")
        return _error("internal error, retry later", 503)
    outcome = (
        "repeat"
        if result.sms_id is None
        else "matched"
        if result.activation_id is not None
        else "unmatched"
    )
    metrics.SMS_PUSHES.labels(outcome).inc()
    if rt.settings.log_requests != "none":
        # Never the text or the code: they are one-time passwords.
        log.info("sms_push", provider=provider.id, outcome=outcome, ip=ip)
    log.debug(
        "sms_routed", provider=provider.id, sms=result.sms_id, activation=result.activation_id
    )
    return json_answer({"status": "SUCCESS"})
