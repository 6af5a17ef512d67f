"""A customer's whole way through the console, in Chromium: sign up, be topped up by the
operator, buy a number, watch its SMS arrive without reloading, finish it, find it in the
history and its CSV; and the plain-language refusals on the way."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import Page, expect

from otphub.domain import errors
from tests.browser.conftest import OpenPage
from tests.browser.people import (
    buy,
    customer_with_login,
    new_email,
    operator,
    sign_in,
    sign_up,
    top_up,
)
from tests.support import Hub

CSV_HEADER = ["id", "service", "country", "phone", "price", "state", "code", "created", "finished"]


class NoReload:
    """Proves a page was not reloaded: a mark left in its window survives, and its main
    frame navigated nowhere."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.navigations: list[str] = []
        page.evaluate("window.otphubTestMark = 'still here'")
        page.on(
            "framenavigated",
            lambda frame: self.navigations.append(frame.url) if frame == page.main_frame else None,
        )

    def check(self) -> None:
        assert self.navigations == []
        assert self.page.evaluate("window.otphubTestMark") == "still here"


def test_sign_up_top_up_buy_live_sms_finish_history_and_csv(hub: Hub, open_page: OpenPage) -> None:
    seller = hub.stocked(count=2, service="tg", country=0, price="0.50", first_phone=79000000001)
    customer = open_page()
    email = new_email()
    sign_up(customer, email, name="Alice")
    customer.get_by_role("link", name="Go to your balance").click()
    expect(customer.locator("#balance")).to_have_text("0.00")

    boss = open_page()
    sign_in(boss, operator(hub))
    customer_id = top_up(boss, email, "25.00")
    expect(boss.locator("#balance")).to_have_text("25.00")
    customer.reload()
    expect(customer.locator("#balance")).to_have_text("25.00")
    expect(customer.locator("#movements")).to_contain_text("25.00")

    customer.goto("/buy")
    customer.get_by_label("Service").select_option("tg")
    customer.get_by_label("Country").select_option("0")
    expect(customer.locator("#offers .price")).to_have_text(["0.50"])
    expect(customer.locator("#offers .stock")).to_have_text(["2"])
    # The activation page opens its event stream as soon as it loads: wait for it, so
    # that the SMS below can only reach the page through it.
    with customer.expect_response(re.compile(r"/activations/\d+/events$")) as stream:
        customer.get_by_role("button", name="Buy", exact=True).click()
    assert stream.value.status == 200
    activation_id = int(customer.url.rsplit("/", 1)[1])
    expect(customer.get_by_role("heading", level=1)).to_have_text(f"Activation {activation_id}")
    phone = customer.locator("#phone").inner_text()
    assert phone in ("79000000001", "79000000002")
    expect(customer.locator("#state")).to_have_text("Waiting for the SMS")
    expect(customer.locator("#sms-list li")).to_have_count(0)

    unchanged = NoReload(customer)
    assert hub.push_sms(seller, phone, "Telegram code: 48213. Do not give it to anyone").is_success
    sms = customer.locator("#sms-list li")
    expect(sms).to_have_count(1)
    expect(sms.locator("code.code")).to_have_text("48213")
    expect(sms).to_contain_text("Telegram code: 48213. Do not give it to anyone")
    expect(customer.locator("#state")).to_have_text("SMS received")
    unchanged.check()

    customer.get_by_role("button", name="Finish").click()
    expect(customer.locator("#state")).to_have_text("Finished")
    expect(customer.get_by_role("button", name="Finish")).to_be_disabled()
    customer.get_by_role("link", name="Balance").click()
    expect(customer.locator("#balance")).to_have_text("24.50")

    customer.get_by_role("link", name="History").click()
    expect(customer.get_by_role("heading", level=1)).to_have_text("History")
    row = customer.locator("#history tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(phone)
    expect(row).to_contain_text("48213")
    expect(row).to_contain_text("0.50")
    with customer.expect_download() as download:
        customer.get_by_role("link", name="Download CSV").click()
    content = download.value.path().read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(content)))
    assert lines[0] == CSV_HEADER
    assert len(lines) == 2, lines
    line = dict(zip(CSV_HEADER, lines[1], strict=True))
    assert line["id"] == str(activation_id)
    assert (line["service"], line["country"], line["phone"]) == ("tg", "0", phone)
    assert (line["price"], line["code"]) == ("0.50", "48213")
    assert line["finished"], line
    row.get_by_role("link", name=str(activation_id)).click()
    expect(customer.locator("#state")).to_have_text("Finished")

    # The operator sees the same customer's money.
    boss.goto(f"/admin/customers/{customer_id}")
    expect(boss.locator("#balance")).to_have_text("24.50")


def test_an_early_cancel_is_refused_in_plain_words(hub: Hub, page: Page) -> None:
    hub.stocked(count=1, service="wa", country=0, price="0.65")
    email = new_email()
    customer_with_login(hub, email, balance="5.00")
    sign_in(page, email)
    activation_id = buy(page, "wa", 0)
    page.goto("/")
    expect(page.locator("#balance")).to_have_text("4.35")

    page.goto(f"/activations/{activation_id}")
    page.get_by_role("button", name="Cancel", exact=True).click()  # the clock has not moved
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(errors.explain("EARLY_CANCEL_DENIED"))
    expect(alert).to_contain_text(
        "An activation cannot be cancelled in the first minutes after purchase."
    )
    expect(page.locator("#state")).to_have_text("Waiting for the SMS")

    hub.clock.advance(hub.rt.settings.early_cancel + 1)
    page.goto(f"/activations/{activation_id}")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#state")).to_have_text("Cancelled")
    expect(page.get_by_role("alert")).to_have_count(0)
    page.goto("/")
    expect(page.locator("#balance")).to_have_text("5.00")


def test_a_purchase_without_money_is_refused_in_plain_words(hub: Hub, page: Page) -> None:
    hub.stocked(count=1, service="tg", country=0, price="0.50")
    email = new_email()
    customer_with_login(hub, email, balance="0.20")
    sign_in(page, email)
    page.goto("/buy")
    page.get_by_label("Service").select_option("tg")
    page.get_by_label("Country").select_option("0")
    page.get_by_role("button", name="Buy", exact=True).click()
    expect(page).to_have_url(re.compile(r"/buy$"))
    expect(page.get_by_role("alert")).to_have_text(errors.explain("NO_BALANCE"))  # once
    page.goto("/")
    expect(page.locator("#balance")).to_have_text("0.20")


def test_the_picker_shows_each_choices_prices_without_reloading(hub: Hub, page: Page) -> None:
    hub.stocked(count=3, service="tg", country=0, price="0.50")
    hub.stocked(
        count=1, service="tg", country=0, price="0.40", payout="0.30", first_phone=79100000001
    )
    hub.stocked(
        count=2, service="tg", country=2, price="0.30", payout="0.20", first_phone=77000000001
    )
    email = new_email()
    customer_with_login(hub, email)
    sign_in(page, email)
    page.goto("/buy")
    unchanged = NoReload(page)
    page.get_by_label("Service").select_option("tg")
    page.get_by_label("Country").select_option("0")
    expect(page.locator("#offers .price")).to_have_text(["0.40", "0.50"])
    expect(page.locator("#offers .stock")).to_have_text(["1", "3"])
    page.get_by_label("Country").select_option("2")
    expect(page.locator("#offers .price")).to_have_text(["0.30"])
    expect(page.locator("#offers .stock")).to_have_text(["2"])
    unchanged.check()


def test_a_buy_form_without_its_token_buys_nothing(hub: Hub, page: Page) -> None:
    hub.stocked(count=1, service="tg", country=0)
    email = new_email()
    customer_with_login(hub, email)
    sign_in(page, email)
    page.goto("/buy")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    with page.expect_response(lambda r: r.url.endswith("/buy")) as answer:
        page.get_by_role("button", name="Buy", exact=True).click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("did not come from this site")
    page.goto("/")
    expect(page.locator("#balance")).to_have_text("10.00")
