"""The operator's console (/admin) over HTTP, on SQLite and PostgreSQL: every page opens
for an operator, every change works through the same services as the shell and is
recorded with who did it, a customer gets 404 everywhere under /admin, a stranger is sent
to sign in, and a POST without the CSRF token is refused."""

from __future__ import annotations

import html
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
    before = hub.call(operator_actions.recent(hub.rt))  # the shell's customer.add
    browser = Browser(hub)
    browser.sign_in("ann@example.com")
    token = browser.csrf("/signup")  # a form the customer may see: a valid token of theirs
    for path in [*PAGES, f"/admin/customers/{customer_id}", "/admin/providers/1"]:
        assert browser.get(path).status_code == 404, path
    for path in (
        f"/admin/customers/{customer_id}/topup",
        "/admin/offers/bulk",
        "/admin/offers/new",
        "/admin/customers",
        "/admin/providers",
        "/admin/providers/1/numbers",
    ):
        form = {"csrf": token, "amount": "100.00", "name": "mine", "kind": "local"}
        response = browser.http.post(path, data=form)
        assert response.status_code == 404, path
    assert hub.call(operator_actions.recent(hub.rt)) == before


def test_strangers_are_sent_to_sign_in_and_forms_need_the_token(hub: Hub) -> None:
    customer_id, _key = hub.customer_id(balance="0.00")
    before = hub.call(operator_actions.recent(hub.rt))  # the shell's customer.add
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
    assert hub.call(operator_actions.recent(hub.rt)) == before


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
    # The shell's: the 3 oldest top-ups and, before them, the customer.add.
    assert rest.count('<td class="actor">shell</td>') == 3 + 1 and "Older changes" not in rest
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


# ------------------------------------------------------------------ creating from the console

NEW_KEY = re.compile(r'<code id="new-key">([^<]+)</code>')
ALERT = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


def shown_once(response: httpx.Response) -> str:
    """The key on the answer to a creating form (rendered, not redirected), with its copy
    button."""
    assert response.status_code == 200, response.text
    found = NEW_KEY.search(response.text)
    assert found, response.text
    assert '<button type="button" class="copy" data-copy="#new-key">' in response.text
    return found.group(1)


def refused_on_page(response: httpx.Response) -> str:
    """The form's page again, status 400, saying why in an alert."""
    assert response.status_code == 400, response.text
    found = ALERT.search(response.text)
    assert found and found.group(1).startswith("Not done:"), response.text
    assert "new-key" not in response.text
    return html.unescape(found.group(1))


def changes_count(hub: Hub) -> int:
    return len(hub.call(operator_actions.recent(hub.rt, limit=200)))


def provider_ids(hub: Hub) -> set[int]:
    return {p.id for p in hub.call(reports.list_providers(hub.rt))}


def offers_of(hub: Hub, provider_id: int) -> list[reports.OfferRow]:
    return hub.call(
        reports.list_offers(
            hub.rt, provider_id=provider_id, service=None, country_id=None, enabled=None, limit=50
        )
    )


def test_a_local_provider_is_set_up_from_the_console_and_sells(hub: Hub) -> None:
    """New provider (its key shown once), its offer, its numbers: all from forms; a customer
    buys one of the numbers and the provider's key pushes the SMS."""
    _customer_id, customer_key = hub.customer_id()
    browser = operator_browser(hub)
    assert 'id="add-provider"' in browser.get("/admin/providers").text

    answer = browser.post(
        "/admin/providers", {"name": "SIM bank 1", "kind": "local"}, page="/admin/providers"
    )
    key = shown_once(answer)
    (provider_id,) = provider_ids(hub)
    assert f'href="/admin/providers/{provider_id}"' in answer.text
    assert key not in browser.get("/admin/providers").text  # once
    change = last_change(hub)
    assert (change.actor, change.action, change.subject) == (
        OPERATOR,
        "provider.add",
        f"provider {provider_id}",
    )
    assert change.detail["name"] == "SIM bank 1" and change.detail["kind"] == "local"
    assert key not in str(change.detail)

    said = browser.flash(
        browser.post(
            "/admin/offers/new",
            {"provider": str(provider_id), "service": "tg", "country": "0", "price": "0.50"},
            page="/admin/offers",
        )
    )
    (offer,) = offers_of(hub, provider_id)
    assert (
        said
        == f"Offer {offer.id} (tg, country 0, provider {provider_id}): price 0.50, payout 0.50."
    )
    assert (offer.price, offer.payout) == (50, 50)  # no payout given: the whole price
    change = last_change(hub)
    assert (change.actor, change.action) == (OPERATOR, "offer.set")

    here = f"/admin/providers/{provider_id}"
    page = browser.get(here).text
    assert 'id="add-numbers"' in page and '<label for="numbers-phones">' in page
    phones = "79000000001\r\n+7 900 000-00-02\r\n\r\n"
    said = browser.flash(
        browser.post(
            here + "/numbers", {"phones": phones, "country": "0", "operator": "mts"}, page=here
        )
    )
    assert said == "2 number(s) added (0 known already)."
    change = last_change(hub)
    assert (change.actor, change.action, change.subject, change.detail) == (
        OPERATOR,
        "number.add",
        f"provider {provider_id}",
        {"country": 0, "operator": "mts", "given": 2, "added": 2},
    )
    said = browser.flash(
        browser.post(
            here + "/numbers", {"phones": "79000000002\n79000000003", "country": "0"}, page=here
        )
    )
    assert said == "1 number(s) added (1 known already)."

    activation_id, phone = hub.buy(customer_key, operator="mts")
    assert phone in ("79000000001", "79000000002")
    pushed = hub.push_sms(Seller(provider_id, key), phone, "Your code: 55123")
    assert pushed.status_code == 200, pushed.text
    assert hub.say(customer_key, "getStatus", id=activation_id) == "STATUS_OK:55123"


def test_agent_and_upstream_providers_are_added_without_recording_secrets(hub: Hub) -> None:
    browser = operator_browser(hub)
    answer = browser.post(
        "/admin/providers",
        {"name": "Agent A", "kind": "agent", "url": "https://agent.example.com/api"},
        page="/admin/providers",
    )
    agent_key = shown_once(answer)
    (agent_id,) = provider_ids(hub)
    agent = hub.call(reports.show_provider(hub.rt, provider_id=agent_id)).provider
    assert (agent.kind, agent.endpoint_url) == ("agent", "https://agent.example.com/api")
    change = last_change(hub)
    assert (change.actor, change.action, change.detail) == (
        OPERATOR,
        "provider.add",
        {
            "name": "Agent A",
            "kind": "agent",
            "url": "https://agent.example.com/api",
            "key_id": change.detail["key_id"],
        },
    )
    assert agent_key not in str(change.detail)
    # The agent's key is OTPHub's: it authenticates the agent's pushes.
    assert hub.call(accounts.authenticate_provider(hub.rt, agent_key)).id == agent_id

    upstream_secret = "upstream-secret-4711"
    answer = browser.post(
        "/admin/providers",
        {
            "name": "Upstream U",
            "kind": "upstream",
            "url": "https://upstream.example.com/stubs/handler_api.php",
            "upstream_key": upstream_secret,
            "markup_percent": "20",
            "markup": "0.05",
        },
        page="/admin/providers",
    )
    shown_once(answer)
    assert upstream_secret not in answer.text
    (upstream_id,) = provider_ids(hub) - {agent_id}
    change = last_change(hub)
    assert change.subject == f"provider {upstream_id}"
    assert change.detail["upstream_key"] == "set"
    assert (change.detail["markup_bp"], change.detail["markup_amount"]) == (2000, 5)
    assert upstream_secret not in str(change.detail)
    changes = browser.get("/admin/changes").text
    assert "markup_bp=20%" in changes and upstream_secret not in changes


@pytest.mark.parametrize(
    ("form", "why"),
    [
        ({"name": "A", "kind": "agent", "url": "ftp://agent.example.com"}, "the agent's URL must"),
        ({"name": "A", "kind": "agent", "url": ""}, "the agent's URL must"),
        (
            {"name": "U", "kind": "upstream", "url": "https://u.example.com/h", "upstream_key": ""},
            "needs OTPHub's API key",
        ),
        (
            {"name": "U", "kind": "upstream", "url": "not a url", "upstream_key": "k"},
            "the upstream's handler URL must",
        ),
        ({"name": "L", "kind": "local", "markup_percent": "10"}, "for an upstream only"),
        ({"name": "L", "kind": "local", "url": "https://x.example.com"}, "has no URL"),
        ({"name": "L", "kind": "sideways"}, "choose the provider's kind"),
        ({"name": " ", "kind": "local"}, "1 to 128 characters"),
        ({"name": "Taken", "kind": "local"}, "exists already"),
        (
            {
                "name": "U",
                "kind": "upstream",
                "url": "https://u.example.com/h",
                "upstream_key": "secret-k",
                "markup_percent": "ten",
            },
            "a markup percent is a number",
        ),
        (
            {
                "name": "U",
                "kind": "upstream",
                "url": "https://u.example.com/h",
                "upstream_key": "secret-k",
                "markup": "-1",
            },
            "amount must be >= 0",
        ),
    ],
)
def test_a_refused_provider_is_explained_and_changes_nothing(
    hub: Hub, form: dict[str, str], why: str
) -> None:
    hub.provider("Taken")
    browser = operator_browser(hub)
    before = (provider_ids(hub), changes_count(hub))
    said = refused_on_page(browser.post("/admin/providers", form, page="/admin/providers"))
    assert why in said, said
    assert (provider_ids(hub), changes_count(hub)) == before
    # The form comes back filled in, except for a secret.
    page = browser.post("/admin/providers", form, page="/admin/providers").text
    if form["name"].strip():
        assert f'value="{form["name"]}"' in page
    assert "secret-k" not in page


def test_refused_offers_and_numbers_change_nothing(hub: Hub) -> None:
    seller = hub.provider("Local L")
    agent = hub.call(
        accounts.add_provider(hub.rt, name="Agent B", agent_url="https://agent.example.com/b")
    )
    browser = operator_browser(hub)
    before = changes_count(hub)
    good = {"provider": str(seller.id), "service": "tg", "country": "0", "price": "0.50"}
    for wrong, why in [
        ({"service": "zz-unknown"}, "unknown service code 'zz-unknown'"),
        ({"provider": "999999"}, "no provider with id 999999"),
        ({"provider": "x"}, "the provider must be a whole number"),
        ({"country": "99999"}, "unknown country id 99999"),
        ({"price": "abc"}, "not an amount"),
        ({"price": "0"}, "amount must be > 0"),
        ({"payout": "0.60"}, "the payout must be between 0 and the price"),
        ({"service": ""}, "give the provider, the service and the country"),
    ]:
        said = html.unescape(
            browser.flash(
                browser.post("/admin/offers/new", {**good, **wrong}, page="/admin/offers")
            )
        )
        assert said.startswith("Not done:") and why in said, (wrong, said)
    assert offers_of(hub, seller.id) == []

    here = f"/admin/providers/{seller.id}"
    for wrong, why in [
        ({"phones": "hello"}, "malformed phone number"),
        ({"phones": "15550001111"}, "does not start with the country code"),
        ({"phones": " \n "}, "no phone numbers given"),
        ({"country": ""}, "choose the numbers' country"),
        ({"operator": "Not An Operator!"}, "malformed operator name"),
    ]:
        form = {"phones": "79000000001", "country": "0", **wrong}
        said = html.unescape(browser.flash(browser.post(here + "/numbers", form, page=here)))
        assert said.startswith("Not done:") and why in said, (wrong, said)
    assert hub.call(reports.show_provider(hub.rt, provider_id=seller.id)).provider.numbers == 0

    # An agent announces its own numbers: no form on its page, and the POST is refused.
    there = f"/admin/providers/{agent.id}"
    assert 'id="add-numbers"' not in browser.get(there).text
    said = browser.flash(
        browser.post(there + "/numbers", {"phones": "79000000001", "country": "0"}, page=there)
    )
    assert said == (
        f"Not done: provider {agent.id} is an agent: it announces its own numbers; numbers "
        "are added to a local provider only"
    )
    assert hub.call(reports.show_provider(hub.rt, provider_id=agent.id)).provider.numbers == 0
    assert changes_count(hub) == before


def test_a_customer_is_created_with_a_console_login(hub: Hub) -> None:
    browser = operator_browser(hub)
    assert 'id="add-customer"' in browser.get("/admin/customers").text
    form = {
        "name": "Alice",
        "balance": "12.50",
        "dialect": "sms-activate",
        "email": "Alice@Example.com",
        "password": PASSWORD,
    }
    answer = browser.post("/admin/customers", form, page="/admin/customers")
    key = shown_once(answer)
    assert "alice@example.com" in answer.text and PASSWORD not in answer.text
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:12.50"
    (customer,) = hub.call(reports.list_customers(hub.rt, search="alice", limit=5))
    assert f'href="/admin/customers/{customer.id}"' in answer.text
    change = last_change(hub)
    assert (change.actor, change.action, change.subject, change.detail) == (
        OPERATOR,
        "customer.add",
        f"customer {customer.id}",
        {
            "name": "Alice",
            "balance": 1250,
            "dialect": "sms-activate",
            "email": "alice@example.com",
            "password": "set",
            "key_id": change.detail["key_id"],
        },
    )
    assert key not in str(change.detail) and PASSWORD not in str(change.detail)
    assert "argon2" not in str(change.detail)
    # The new customer signs in to the console with that email.
    visitor = Browser(hub)
    visitor.sign_in("alice@example.com")
    assert '<span id="balance">12.50</span>' in visitor.get("/").text

    # Without a login, the defaults: no balance, sms-activate; another dialect if chosen.
    answer = browser.post(
        "/admin/customers", {"name": "Bob", "dialect": "grizzly"}, page="/admin/customers"
    )
    bob_key = shown_once(answer)
    (bob,) = hub.call(reports.list_customers(hub.rt, search="bob", limit=5))
    assert (bob.balance, bob.dialect) == (0, "grizzly")
    assert hub.call(accounts.authenticate_customer(hub.rt, bob_key)).id == bob.id
    assert "email" not in last_change(hub).detail


@pytest.mark.parametrize(
    ("form", "why"),
    [
        ({"email": "taken@example.com", "password": PASSWORD}, "already used by another account"),
        ({"email": OPERATOR, "password": PASSWORD}, "already used by another account"),
        ({"email": "new@example.com"}, "needs both an email and a password"),
        ({"password": PASSWORD}, "needs both an email and a password"),
        ({"email": "new@example.com", "password": "short"}, "at least 10 characters"),
        ({"email": "not-an-email", "password": PASSWORD}, "not an email address"),
        ({"balance": "-5"}, "amount must be >= 0"),
        ({"balance": "abc"}, "not an amount"),
        ({"dialect": "klingon"}, "unknown dialect"),
        ({"name": ""}, "1 to 128 characters"),
    ],
)
def test_a_refused_customer_is_explained_and_changes_nothing(
    hub: Hub, form: dict[str, str], why: str
) -> None:
    taken, _key = hub.customer_id(name="Taken")
    hub.call(
        login_service.set_customer_login(
            hub.rt, customer_id=taken, email="taken@example.com", password=PASSWORD
        )
    )
    browser = operator_browser(hub)

    def customers() -> list[int]:
        return [c.id for c in hub.call(reports.list_customers(hub.rt, search=None, limit=50))]

    before = (customers(), changes_count(hub))
    answer = browser.post("/admin/customers", {"name": "Carol", **form}, page="/admin/customers")
    said = refused_on_page(answer)
    assert why in said, said
    assert PASSWORD not in answer.text
    assert (customers(), changes_count(hub)) == before
