"""How each dialect words a refusal (customer-api.md, "Dialects"). The other differences
(the shapes of getActiveActivations, getHistory, getServicesList) live with their actions;
every other answer is the same in every dialect.

sms-activate and grizzly: the word itself as the body, HTTP 200 (429 for the rate limits).
herosms: the word's HTTP status (``errors.http_status``) and JSON
``{"title": NAME, "details": plain-language text}`` (NAME: the word without its ``:`` part).
"""

from __future__ import annotations

from starlette.responses import Response

from otphub.domain import dialects, errors
from otphub.http.answers import json_answer, text


def refusal(dialect: str, word: str, *, status_code: int = 200) -> Response:
    """A protocol refusal in ``dialect``. ``status_code``: the sms-activate answer's own
    status (429 for TOO_MANY_REQUESTS, 200 for every other word)."""
    if dialect == dialects.HEROSMS:
        return json_answer(
            {"title": errors.refusal_name(word), "details": errors.explain(word)},
            status_code=errors.http_status(word),
        )
    return text(word, status_code=status_code)
