"""``/keys``: the customer's API keys: create one (shown once, on the answer to the
form: it is never stored in clear), revoke one (refused at once everywhere)."""

from __future__ import annotations

from starlette.responses import Response

from otphub.domain import errors
from otphub.domain.numbers import parse_whole
from otphub.http.console.customer.common import me, sentence
from otphub.http.console.web import Visit, customer_page, not_found, redirect, render
from otphub.services import customer_keys


async def _page(
    visit: Visit, *, new_key: str | None = None, error: str | None = None, status_code: int = 200
) -> Response:
    return render(
        visit,
        "customer/keys.html",
        status_code=status_code,
        keys=await customer_keys.listed(visit.rt, customer_id=me(visit).id),
        new_key=new_key,
        error=error,
        words=errors.explained_words(),
    )


@customer_page
async def keys_page(visit: Visit) -> Response:
    if visit.request.method == "GET":
        return await _page(visit)
    try:
        created = await customer_keys.create(visit.rt, customer_id=me(visit).id)
    except errors.InvalidInput as refused:
        return await _page(visit, error=sentence(str(refused)), status_code=400)
    # Rendered, not redirected: the key exists in clear only in this answer.
    return await _page(visit, new_key=created.key)


@customer_page
async def revoke(visit: Visit) -> Response:
    key_id = parse_whole(str(visit.request.path_params["key_id"]))
    if key_id is None or key_id <= 0:
        return not_found(visit)
    try:
        revoked = await customer_keys.revoke(visit.rt, customer_id=me(visit).id, key_id=key_id)
    except errors.NotFound:
        return not_found(visit)
    return redirect(
        visit, "/keys", flash=f"The key {revoked.hint}... is revoked: it no longer works anywhere."
    )
