"""What the operator's pages share: who acts (for the record of changes), reading form and
query fields, and doing a change then going back to the page with a one-line message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from otphub.domain import errors
from otphub.http.console.web import Visit, redirect
from otphub.services.operator_actions import Actor


def actor(visit: Visit) -> Actor:
    """The signed-in operator, as the record of changes names them."""
    assert visit.signed is not None
    return Actor(visit.signed.subject.id, visit.signed.subject.email)


def query(visit: Visit, name: str) -> str:
    return visit.request.query_params.get(name, "").strip()[:200]


def optional_int(text: str, *, what: str) -> int | None:
    """An id or a count typed by the operator: blank is ``None``; anything but digits is
    refused with ``what`` named."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise errors.InvalidInput(f"{what} must be a whole number, not {text!r}")
    return int(text)


def path_id(visit: Visit, name: str = "id") -> int:
    value = visit.request.path_params[name]
    assert isinstance(value, int)
    return value


async def change(
    visit: Visit, back: str, do: Callable[[], Awaitable[str]], *, failed_back: str | None = None
) -> Response:
    """Run a change (``do`` returns what to say when it is done) and go back to ``back``;
    a refusal goes back too (to ``failed_back`` if given), saying why, and changes
    nothing."""
    try:
        said = await do()
    except (errors.InvalidInput, errors.NotFound) as refusal:
        return redirect(visit, failed_back or back, problem=f"Not done: {refusal}")
    return redirect(visit, back, flash=said)


def back_to(visit: Visit, default: str) -> str:
    """Where a form came from (its ``back`` field, a path under /admin), else ``default``:
    a change made on a filtered list returns to the same filtered list."""
    wanted = visit.field("back")
    if wanted.startswith("/admin") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted[:500]
    return default
