"""``/``: the balance, the live activations and the latest movements of the wallet."""

from __future__ import annotations

from starlette.responses import Response

from otphub.http.console.customer.common import me, state_label
from otphub.http.console.web import Visit, customer_page, render
from otphub.services import activation_views, wallet

LIVE_SHOWN = 20
MOVEMENTS_SHOWN = 20


@customer_page
async def home(visit: Visit) -> Response:
    customer = me(visit)
    available, held = await wallet.balance(visit.rt, customer)
    live = await activation_views.page(
        visit.rt, customer=customer, state="live", offset=0, limit=LIVE_SHOWN
    )
    movements = await wallet.movements_of(visit.rt, customer, limit=MOVEMENTS_SHOWN)
    return render(
        visit,
        "customer/home.html",
        available=available,
        held=held,
        live=live,
        movements=movements,
        state_label=state_label,
    )
