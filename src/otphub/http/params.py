"""Reading the customer API's parameters the way every client sends them.

GET or POST; on POST the parameters may be in the query string, a form body or a
multipart body, and are merged (the body wins). Parameter names are trimmed (clients send
``"api_key "``), and an empty value counts as absent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from otphub.http.limits import MAX_PARAMS, MAX_QUERY, MAX_VALUE, RequestTooLarge
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

Params = dict[str, str]
# One action of the customer API: (runtime, authenticated customer, parameters) -> answer.
Action = Callable[[Runtime, Customer, Params], Awaitable[Response]]

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_params(request: Request) -> Params:
    """Raises ``RequestTooLarge`` beyond the limits (the body's is enforced by BodyLimit)."""
    query: bytes = request.scope.get("query_string", b"")
    if len(query) > MAX_QUERY:
        raise RequestTooLarge()
    params: Params = {}
    # What Starlette's ``request.query_params`` does, without building its multi-dict.
    for name, value in _query_pairs(query.decode("latin-1")):
        _put(params, name, value)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith(_FORM_TYPES):
            form = await request.form()
            for name, item in form.multi_items():
                if isinstance(item, UploadFile):
                    continue
                _put(params, name, item)
    if len(params) > MAX_PARAMS or any(len(v) > MAX_VALUE for v in params.values()):
        raise RequestTooLarge()
    return params


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``. Most queries have nothing escaped
    (keys, ids and action names are letters and digits): those are split directly, which
    is what ``parse_qsl`` does to them after unquoting each part for nothing."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _put(params: Params, name: str, value: str) -> None:
    key = name.replace("\x00", "\ufffd").strip()
    cleaned = value.replace("\x00", "\ufffd").strip()
    if key and cleaned:
        params[key] = cleaned
