"""Byte-exact protocol answers: no trailing newline, no spaces in JSON, UTF-8."""

from __future__ import annotations

import json

from starlette.responses import Response

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"


def text(word: str, status_code: int = 200) -> Response:
    return Response(word.encode(), status_code=status_code, media_type=TEXT)


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def json_answer(value: object, status_code: int = 200) -> Response:
    return Response(dumps(value), status_code=status_code, media_type=JSON)
