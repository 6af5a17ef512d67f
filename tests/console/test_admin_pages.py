"""The operator's console (/admin) over HTTP, on SQLite and PostgreSQL: every page opens
for an operator, every change works through the same services as the shell and is
recorded with who did it, a customer gets 404 everywhere under /admin, a stranger is sent
to sign in, and a POST without the CSRF token is refused."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from otphub.db.logins import ActionRow
from otphub.http.console.admin.charts import bars
from otphub.services import accounts, dashboard, inventory, operator_actions, reports
from otphub.services import logins as login_service
from otphub.services.operator_actions import SHELL
from tests.support import Hub, Seller

PASSWORD = "correct horse battery"
OPERATOR = "ops@example.com"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')
H1 = re.compile(r"<h1>([^<]*)</h1>")

PAGES = {
    "/admin": "Dashboard",
    "/admin?window=day": "Dashboard",
    "/admin/providers": "Providers",
    "/admin/offers": "Offers and prices",
    "/admin/numbers": "Numbers",
    "/admin/customers": "Customers",
    "/admin/audit": "Audit",
    "/admin/sms": "Unmatched SMS",
    "/admin/changes": "Changes",
}


class Browser:
    """A visitor with its own cookies, never following redirects."""

    def __init__(self, hub: Hub) -> None:
        self.http = httpx.Client(base_url=hub.url, timeout=60, follow_redirects=False)

    def get(self, path: str, **params: Any) -> httpx.Response:
        # (httpx would replace a query written in ``path`` with an empty ``params``.)
        return self.http.get(path, params=params) if params else self.http.get(path)

    def csrf(self, path: str) -> str:
        found = CSRF_FIELD.search(self.get(path).text)
        assert found
        return found.group(1)

    def sign_in(self, email: str) -> None:
        form = {"csrf": self.csrf("/login"), "email": email, "password": PASSWORD}
        assert self.http.post("/login", data=form).status_code == 303

    def post(self, path: str, data: dict[str, str] | None = None, *, page: str) -> httpx.Response:
        """POST a form as the page ``page`` would (with its CSRF token)."""
        return self.http.post(path, data={"csrf": self.csrf(page), **(data or {})})

    def flash(self, response: httpx.Response) -> str:
        """The one-line message a change's redirect carries to the next page: what was
        done (a status), or what was refused (an alert)."""
        assert response.status_code == 303, response.text
        page = self.get(response.headers["location"])
        done = re.search(r'<p class="flash" role="status">([^<]*)</p>', page.text)
        refused = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
        assert not (done and refused)
        if refused:
            assert refused.group(1).startswith("Not done:")
        found = done or refused
        return found.group(1) if found else ""


def operator_browser(hub: Hub) -> Browser:
    hub.call(login_service.add_operator(hub.rt, email=OPERATOR, password=PASSWORD))
    browser = Browser(hub)
    browser.sign_in(OPERATOR)
    return browser


def last_change(hub: Hub) -> ActionRow:
    return hub.call(operator_actions.recent(hub.rt, limit=1))[0]


def offer_of(hub: Hub, seller: Seller) -> reports.OfferRow:
    found = hub.call(
        reports.list_offers(
            hub.rt, provider_id=seller.id, service=None, country_id=None, enabled=None, limit=10
        )
    )
    return found[0]


def test_every_page_opens_for_an_operator(hub: Hub) -> None:
    seller = hub.stocked()
    customer_id, key = hub.customer_id()
    hub.buy(key)
    browser = operator_browser(hub)
    pages = {
        **PAGES,
        f"/admin/providers/{seller.id}": f"Provider {seller.id}",
        f"/admin/customers/{customer_id}": f"Customer {customer_id}",
    }
    for path, h1 in pages.items():
        page = browser.get(path)
        assert page.status_code == 200, (path, page.text)
        assert H1.findall(page.text) == [h1] or H1.findall(page.text)[0].startswith(h1), path
        assert "Content-Security-Policy" in page.headers
    board = browser.get("/admin").text
    for caption in ("Activations per minute", "Success rate", "Time to SMS", "Revenue"):
        assert f"<figcaption>{caption}</figcaption>" in board
    assert "<figcaption>Open holds</figcaption>" in board
    assert board.count('<figure class="chart"') == 5
    assert "1 bought" in board
    assert "0.50 " in board  # the open hold of the activation just bought
    assert "No audit has run from the console yet" in browser.get("/admin/audit").text
    assert browser.get("/admin/customers/999999").status_code == 404
    assert browser.get("/admin/providers/999999").status_code == 404
    assert browser.get("/admin/offers", country="x").status_code == 400


def test_the_audit_page_shows_the_last_run_and_runs_one_on_demand(hub: Hub) -> None:
    """The page reads the last recorded run (a run recomputes every balance: too slow for
    every visit); "Run the audit now" records a new one, with who ran it."""
    hub.customer_id()
    browser = operator_browser(hub)
    said = browser.flash(browser.post("/admin/audit", page="/admin/audit"))
    assert said.startswith("Audit run in ") and said.endswith(": clean.")
    page = browser.get("/admin/audit").text
    assert "Clean: every balance matches the journal" in page
    assert f"by {OPERATOR}, in " in page
    assert '<td class="num">10.00</td>' in page  # the totals: the customer's wallet
    # A damaged wallet: the next run says so.
    damage(hub, 5)
    said = browser.flash(browser.post("/admin/audit", page="/admin/audit"))
    assert said.endswith("problem(s) found.")
    page = browser.get("/admin/audit").text
    assert 'id="problems"' in page and "Problems found" in page
    damage(hub, -5)


def damage(hub: Hub, minor: int) -> None:
    async def write() -> None:
        async with hub.rt.db.write() as conn:
            await conn.execute(
                text("UPDATE accounts SET balance = balance + :d WHERE kind = 'customer'"),
                {"d": minor},
            )

    hub.call(write())


def test_prices_are_edited_one_by_one_and_in_bulk(hub: Hub) -> None:
    seller = hub.stocked(price="0.50", payout="0.40")
    other = hub.stocked(service="wa", price="1.00", payout="0.10", first_phone=79000000100)
    offer = offer_of(hub, seller)
    browser = operator_browser(hub)
    page = browser.get("/admin/offers", service="tg").text
    assert f'id="price-{offer.id}"' in page and f'for="price-{offer.id}"' in page

    said = browser.flash(
        browser.post(f"/admin/offers/{offer.id}", {"price": "0.70"}, page="/admin/offers")
    )
    assert "price 0.70, payout 0.40" in said
    assert offer_of(hub, seller).price == 70
    change = last_change(hub)
    assert (change.actor, change.action, change.subject) == (
        OPERATOR,
        "offer.set",
        f"offer {offer.id}",
    )

    # Bulk, by service: +10 % (payouts kept); the other service's offer is untouched.
    said = browser.flash(
        browser.post(
            "/admin/offers/bulk", {"service": "tg", "percent": "+10"}, page="/admin/offers"
        )
    )
    assert said == "1 offer(s) changed."
    assert offer_of(hub, seller).price == 77
    assert offer_of(hub, other).price == 100
    change = last_change(hub)
    assert (change.actor, change.action) == (OPERATOR, "offer.bulk_price")
    assert change.detail["offers"] == [offer.id]

    # Under the payout: refused with inventory's reason, nothing changed, nothing recorded.
    said = browser.flash(
        browser.post("/admin/offers/bulk", {"country": "0", "price": "0.20"}, page="/admin/offers")
    )
    assert said.startswith("Not done:") and "above the new price" in said
    assert (offer_of(hub, seller).price, offer_of(hub, other).price) == (77, 100)
    assert last_change(hub).action == "offer.bulk_price"

    # Disable then enable.
    browser.flash(browser.post(f"/admin/offers/{offer.id}/disable", page="/admin/offers"))
    assert not offer_of(hub, seller).enabled
    assert last_change(hub).action == "offer.disable"
    browser.flash(browser.post(f"/admin/offers/{offer.id}/enable", page="/admin/offers"))
    assert offer_of(hub, seller).enabled


def test_providers_and_numbers_are_switched(hub: Hub) -> None:
    seller = hub.stocked(count=2)
    browser = operator_browser(hub)
    page = browser.get("/admin/providers").text
    assert "Disable" in page and f"provider-{seller.id}" in page

    browser.flash(browser.post(f"/admin/providers/{seller.id}/disable", page="/admin/providers"))
    found = hub.call(reports.show_provider(hub.rt, provider_id=seller.id)).provider
    assert not found.enabled
    change = last_change(hub)
    assert (change.actor, change.action) == (OPERATOR, "provider.disable")
    assert hub.say(hub.customer(), "getNumber", service="tg", country=0) == "NO_NUMBERS"
    browser.flash(browser.post(f"/admin/providers/{seller.id}/enable", page="/admin/providers"))
    assert hub.call(reports.show_provider(hub.rt, provider_id=seller.id)).provider.enabled

    numbers = browser.get("/admin/numbers", phone="79000000002").text
    number = hub.call(
        reports.list_numbers(
            hub.rt,
            provider_id=seller.id,
            country_id=None,
            operator=None,
            phone_prefix="79000000002",
            status=None,
            limit=1,
        )
    )[0]
    assert f"number-{number.id}" in numbers and "79000000001" not in numbers
    browser.flash(browser.post(f"/admin/numbers/{number.id}/disable", page="/admin/numbers"))
    assert hub.call(reports.list_numbers(
        hub.rt, provider_id=None, country_id=None, operator=None,
        phone_prefix="79000000002", status="offline", limit=1,
    ))  # fmt: skip
    change = last_change(hub)
    assert (change.actor, change.action, change.subject) == (
        OPERATOR,
        "number.disable",
        f"number {number.id}",
    )


def test_customers_are_run_from_the_console(hub: Hub) -> None:
    seller = hub.stocked()
    customer_id, key = hub.customer_id(balance="1.00", name="Zed")
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Your code: 55123")
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    browser = operator_browser(hub)
    here = f"/admin/customers/{customer_id}"

    found = browser.get("/admin/customers", q="zed").text
    assert f'href="{here}"' in found
    assert f'href="{here}"' in browser.get("/admin/customers", q=str(customer_id)).text
    assert f'href="{here}"' not in browser.get("/admin/customers", q="nobody").text

    page = browser.get(here).text
    assert '<span id="balance">0.50</span>' in page
    assert f'action="/admin/activations/{activation_id}/refund"' in page

    said = browser.flash(browser.post(here + "/topup", {"amount": "5.00"}, page=here))
    assert "available now 5.50" in said
    assert '<span id="balance">5.50</span>' in browser.get(here).text
    change = last_change(hub)
    assert (change.actor, change.action, change.detail) == (
        OPERATOR,
        "customer.top_up",
        {"amount": 500},
    )
    assert "Not done:" in browser.flash(browser.post(here + "/topup", {"amount": "-1"}, page=here))

    browser.flash(browser.post(here + "/limits", {"rate_limit": "7", "max_live": "2"}, page=here))
    row = hub.call(reports.show_customer(hub.rt, customer_id=customer_id)).customer
    assert (row.rate_limit, row.max_live) == (7, 2)
    assert last_change(hub).action == "customer.limits"

    browser.flash(browser.post(here + "/ban", {"days": "1"}, page=here))
    assert hub.say(key, "getBalance").startswith("BANNED")
    assert last_change(hub).action == "customer.ban"
    browser.flash(browser.post(here + "/unban", page=here))
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:5.50"
    assert last_change(hub).action == "customer.unban"

    # A refund needs a reason; with one, the price goes back once.
    refund = f"/admin/activations/{activation_id}/refund"
    said = browser.flash(browser.post(refund, {"reason": " ", "back": here}, page=here))
    assert said.startswith("Not done:")
    said = browser.flash(browser.post(refund, {"reason": "no code came", "back": here}, page=here))
    assert f"Activation {activation_id} refunded: 0.50" in said
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:6.00"
    change = last_change(hub)
    assert (change.actor, change.action, change.detail["reason"]) == (
        OPERATOR,
        "activation.refund",
        "no code came",
    )
    assert "refunded" in browser.get(here).text
    said = browser.flash(browser.post(refund, {"reason": "again", "back": here}, page=here))
    assert "refunded already" in said

    changes = browser.get("/admin/changes").text
    assert "activation.refund" in changes and OPERATOR in changes
    assert "amount=0.50, customer=" in changes  # money as money, not minor units


def test_a_provider_is_paid_from_its_page(hub: Hub) -> None:
    seller = hub.stocked(price="0.50", payout="0.40")
    _customer_id, key = hub.customer_id()
    activation_id, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Your code: 55123")
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    browser = operator_browser(hub)
    here = f"/admin/providers/{seller.id}"
    assert '<strong id="payable">0.40</strong>' in browser.get(here).text
    said = browser.flash(
        browser.post(here + "/payout", {"amount": "0.30", "note": "tx 1"}, page=here)
    )
    assert "still owed 0.10" in said
    change = last_change(hub)
    assert (change.actor, change.action, change.detail) == (
        OPERATOR,
        "provider.payout",
        {"amount": 30, "note": "tx 1"},
    )
    said = browser.flash(browser.post(here + "/payout", {"amount": "0.20"}, page=here))
    assert said.startswith("Not done:") and "owed 0.10" in said


def test_changes_from_the_shell_are_recorded_as_the_shell(hub: Hub) -> None:
    customer_id, _key = hub.customer_id()
    seller = hub.provider()
    hub.call(accounts.top_up(hub.rt, customer_id=customer_id, amount=100))
    change = last_change(hub)
    assert (change.actor, change.action) == (SHELL.name, "customer.top_up")
    hub.call(
        inventory.set_offer(hub.rt, provider_id=seller.id, service="tg", country_id=0, price=50)
    )
    assert (last_change(hub).actor, last_change(hub).action) == ("shell", "offer.set")


def test_a_customer_never_sees_admin_pages(hub: Hub) -> None:
    customer_id, _key = hub.customer_id()
    hub.call(
        login_service.set_customer_login(
            hub.rt, customer_id=customer_id, email="ann@example.com", password=PASSWORD
        )
    )
    browser = Browser(hub)
    browser.sign_in("ann@example.com")
    token = browser.csrf("/signup")  # a form the customer may see: a valid token of theirs
    for path in [*PAGES, f"/admin/customers/{customer_id}", "/admin/providers/1"]:
        assert browser.get(path).status_code == 404, path
    for path in (f"/admin/customers/{customer_id}/topup", "/admin/offers/bulk"):
        response = browser.http.post(path, data={"csrf": token, "amount": "100.00"})
        assert response.status_code == 404, path
    assert hub.call(operator_actions.recent(hub.rt)) == []


def test_strangers_are_sent_to_sign_in_and_forms_need_the_token(hub: Hub) -> None:
    customer_id, _key = hub.customer_id(balance="0.00")
    stranger = Browser(hub)
    for path in PAGES:
        response = stranger.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=/admin")
    browser = operator_browser(hub)
    here = f"/admin/customers/{customer_id}"
    response = browser.http.post(here + "/topup", data={"amount": "5.00"})
    assert response.status_code == 403
    response = browser.http.post(here + "/topup", data={"amount": "5.00", "csrf": "forged"})
    assert response.status_code == 403
    assert hub.call(reports.show_customer(hub.rt, customer_id=customer_id)).customer.balance == 0
    assert hub.call(operator_actions.recent(hub.rt)) == []


@pytest.mark.parametrize(
    ("values", "bars_drawn"), [([1.0, None, 3.0], 2), ([0.0, 0.0], 0), ([-2.0, 5.0], 2)]
)
def test_charts_are_svg_with_escaped_labels(values: list[float | None], bars_drawn: int) -> None:
    svg = bars(
        values, labels=[f"<{i}>" for i in range(len(values))], title="A & B", fmt=lambda v: f"{v:g}"
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == bars_drawn
    assert 'aria-label="A &amp; B"' in svg and "<0>" not in svg and "&lt;0&gt;" in svg


def test_the_dashboard_counts_what_happened(hub: Hub) -> None:
    seller = hub.stocked(count=3)
    _customer_id, key = hub.customer_id(balance="5.00")
    first, phone = hub.buy(key)
    hub.push_sms(seller, phone, "Your code: 55123")
    hub.clock.advance(5)
    assert hub.say(key, "setStatus", id=first, status=6) == "ACCESS_ACTIVATION"
    hub.buy(key)
    browser = operator_browser(hub)
    board = browser.get("/admin").text
    assert "2 bought" in board
    assert "100% finished" in board
    code = hub.rt.settings.money.code
    assert f"0.10 {code}</p>" in board  # revenue: the first's price less its payout
    assert f"0.50 {code} now</p>" in board  # the second's open hold


def test_the_dashboard_walks_open_holds_back_minute_by_minute(hub: Hub) -> None:
    seller = hub.stocked(count=3)
    _customer_id, key = hub.customer_id(balance="5.00")
    first, phone = hub.buy(key)
    hub.clock.advance(120)
    hub.buy(key)
    hub.clock.advance(120)
    hub.push_sms(seller, phone, "Your code: 55123")
    assert hub.say(key, "setStatus", id=first, status=6) == "ACCESS_ACTIVATION"
    board = hub.call(dashboard.dashboard(hub.rt, window="hour"))
    holds = [b.open_holds for b in board.buckets]
    bought = [b.bought for b in board.buckets]
    assert len(holds) == 60 and sum(bought) == 2 == board.bought
    # Now (last minute): the second only; two minutes ago: both; four: the first only.
    assert holds[-1] == 50 and holds[-3] == 100 and holds[-5] == 50 and holds[-6] == 0
    assert bought[-5] == 1 and bought[-3] == 1
    assert board.success_rate == 1.0 and board.revenue == 10
    assert board.open_holds == 50
    day = hub.call(dashboard.dashboard(hub.rt, window="day"))
    assert len(day.buckets) == 24 and day.bought == 2


def test_the_changes_are_paged_and_filtered_by_who(hub: Hub) -> None:
    customer_id, _key = hub.customer_id()
    for _ in range(52):
        hub.call(accounts.top_up(hub.rt, customer_id=customer_id, amount=1))
    browser = operator_browser(hub)
    here = f"/admin/customers/{customer_id}"
    browser.flash(browser.post(here + "/topup", {"amount": "1.00"}, page=here))
    first = browser.get("/admin/changes").text
    assert first.count('<td class="actor">') == 50
    assert f'<td class="actor">{OPERATOR}</td>' in first  # the newest first
    older = re.search(r'href="(/admin/changes\?before=\d+)"', first)
    assert older
    rest = browser.get(older.group(1)).text
    assert rest.count('<td class="actor">shell</td>') == 3 and "Older changes" not in rest
    mine = browser.get("/admin/changes", actor=OPERATOR).text
    assert mine.count('<td class="actor">') == 1


@pytest.mark.parametrize("cache_seconds", [0, 60])
def test_a_providers_page_shows_the_stock_the_price_lists_advertise(
    hub: Hub, cache_seconds: float
) -> None:
    """With the stock count cached (the default) or counted at each visit: the provider's
    enabled offers with free numbers, the biggest first, and nothing of another provider."""
    hub.rt.settings.stock_cache_seconds = cache_seconds
    seller = hub.stocked(count=3, price="0.50")
    hub.offer(seller, service="wa", price="0.70")
    other = hub.stocked(count=5, service="vk", first_phone=79000000100)
    browser = operator_browser(hub)
    page = browser.get(f"/admin/providers/{seller.id}").text
    table = page[
        page.index('<table id="stock">') : page.index("</table>", page.index('id="stock"'))
    ]
    rows = re.findall(
        r"<tr><td>(\w+)</td><td>(\d+)</td><td class=\"num\">(\d+)</td>"
        r"<td class=\"num\">([\d.]+)</td><td>(\w+)</td></tr>",
        table,
    )
    assert sorted(rows) == [("tg", "0", "3", "0.50", "local"), ("wa", "0", "3", "0.70", "local")]
    assert "vk" not in table
    assert "<td>vk</td>" in browser.get(f"/admin/providers/{other.id}").text
