"""What both protocols' answers share: refusals in every shape, and reading JSON values.

Transport-free: the sync and async clients hand an ``Answer`` here and get a value or an
exception, so the two never hold a copy of the same rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from otphub.client import errors

# An answer bigger than this is not one of ours (the largest, getCountries or a long
# history, is a few hundred kilobytes): refuse it rather than hold it all in memory.
MAX_ANSWER = 8 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status_code: int
    content_type: str
    text: str
    retry_after: str | None = None


def answer_of(response: httpx.Response) -> Answer:
    """The parts of a read response that the parsers look at."""
    if len(response.content) > MAX_ANSWER:
        raise errors.UnexpectedAnswer(
            f"answer of {len(response.content)} bytes", status_code=response.status_code
        )
    return Answer(
        status_code=response.status_code,
        content_type=response.headers.get("content-type", ""),
        text=response.text,
        retry_after=response.headers.get("retry-after"),
    )


def refusal(answer: Answer) -> errors.ProtocolError | errors.UnexpectedAnswer | None:
    """The error an answer carries, in any of its shapes, or None for a success.

    HTTP 429 is always ``TooManyRequests``; another 4xx/5xx with a JSON object is the
    herosms dialect (``title``/``details``) or API v1 (``error``/``message``); a 200 whose
    whole text is a protocol word is the sms-activate protocol's refusal.
    """
    status = answer.status_code
    if status == 429:
        return errors.TooManyRequests(retry_after=retry_after_seconds(answer.retry_after))
    if status >= 400:
        body = _json_or_none(answer.text)
        if isinstance(body, dict):
            found = error_from_json(body)
            if found is not None:
                return found
        text = answer.text.strip()
        if errors.is_error_word(text):
            return errors.error_for(text)
        return errors.UnexpectedAnswer(
            f"HTTP {status} without a protocol error", status_code=status, body=answer.text
        )
    if status >= 300 or status < 200:
        return errors.UnexpectedAnswer(
            f"HTTP {status} (redirects are not followed: check the base URL)",
            status_code=status,
            body=answer.text,
        )
    if errors.is_error_word(answer.text):
        return errors.error_for(answer.text)
    return None


def error_from_json(body: dict[str, Any]) -> errors.ProtocolError | None:
    """``{"error": NAME, "message": ...}`` (API v1, with ``min_price``, ``until`` or
    ``details`` by word), ``{"title": WORD, "details": ...}`` (herosms) or
    ``{"status": "error", "error": WORD}`` (sms-activate's JSON actions on some services)."""
    word = body.get("error") if isinstance(body.get("error"), str) else body.get("title")
    if not isinstance(word, str) or not word:
        return None
    message = body.get("message", body.get("details"))
    text = message if isinstance(message, str) else None
    name = word.partition(":")[0]
    if name == "WRONG_MAX_PRICE" and "min_price" in body:
        return errors.WrongMaxPrice(word, text, min_price=decimal_or_none(body["min_price"]))
    if name == "BANNED" and isinstance(body.get("until"), str):
        return errors.Banned(word, text, until=body["until"])
    if name == "BAD_REQUEST":
        details = body.get("details")
        return errors.BadRequest(word, text, details=details if isinstance(details, list) else None)
    return errors.error_for(word, text)


def retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def check(answer: Answer) -> str:
    """The text of a successful answer; raises its refusal otherwise."""
    problem = refusal(answer)
    if problem is not None:
        raise problem
    return answer.text


# ---------------------------------------------------------------- reading values


def load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise errors.UnexpectedAnswer("the answer is not JSON", body=text) from None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def bad_shape(what: str, value: Any) -> errors.UnexpectedAnswer:
    return errors.UnexpectedAnswer(f"unexpected {what}", body=json.dumps(value)[:500])


def as_int(value: Any, what: str = "number") -> int:
    if isinstance(value, bool):
        raise bad_shape(what, value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise bad_shape(what, value)


def as_int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else as_int(value)


def as_decimal(value: Any, what: str = "amount") -> Decimal:
    found = decimal_or_none(value)
    if found is None:
        raise bad_shape(what, value)
    return found


def decimal_or_none(value: Any) -> Decimal | None:
    """A JSON number or numeric text as a Decimal. A float goes through ``repr``, the
    shortest text that reads back as the same double, which is the decimal the server
    printed (``0.5``, not ``0.5000000000000000277``)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return bool(value)


def as_str(value: Any, what: str = "text") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise bad_shape(what, value)


def as_str_or_none(value: Any) -> str | None:
    return None if value is None else as_str(value)


def as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_shape(what, value)
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_shape(what, value)
    return value
