"""``otphub demo`` clicked through in Chromium from what it prints: the console's address and
the two logins, the simulated SIM bank's SMS arriving on the open activation page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ACTION_TIMEOUT_MS
from tests.browser.people import sign_in
from tests.test_demo import RunningDemo, printed_logins, running_demo

__all__ = ["running_demo"]  # the fixture: `otphub demo` as a process, as a newcomer runs it


def opened(browser: Browser, demo_run: RunningDemo) -> Page:
    context = browser.new_context(base_url=demo_run.base)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    return page


@pytest.mark.slow
def test_a_newcomer_clicks_through_the_printed_demo(
    running_demo: RunningDemo, browser: Browser
) -> None:
    printed = running_demo.printed
    logins = printed_logins(printed)
    address = re.search(r"open (http://\S+/login)", printed)
    assert address is not None, printed

    customer = opened(browser, running_demo)
    try:
        customer.goto(address.group(1))
        sign_in(customer, *logins["customer"], path="")
        expect(customer.get_by_role("heading", level=1)).to_have_text("Balance")
        menu = customer.get_by_role("navigation", name="Main")
        menu.get_by_role("link", name="Buy a number").click()
        customer.get_by_label("Service").select_option("tg")
        customer.get_by_label("Country").select_option("0")
        expect(customer.locator("#offers .price")).to_have_text(["0.50"])
        customer.get_by_role("button", name="Buy", exact=True).click()
        expect(customer).to_have_url(re.compile(r"/activations/\d+$"))
        # The simulator sends its SMS about three seconds after the purchase.
        sms = customer.locator("#sms-list li")
        expect(sms).to_have_count(1, timeout=15_000)
        expect(sms).to_contain_text("Telegram code")
        customer.get_by_role("button", name="Finish").click()
        expect(customer.locator("#state")).to_have_text("Finished")
        menu.get_by_role("link", name="History").click()
        expect(customer.locator("#history tbody tr").first).to_contain_text("Finished")
    finally:
        customer.context.close()

    operator = opened(browser, running_demo)
    try:
        operator.goto(address.group(1))
        sign_in(operator, *logins["operator"], path="")
        expect(operator.get_by_role("heading", level=1)).to_have_text("Dashboard")
        expect(operator.locator("figure.chart")).to_have_count(5)
        operator.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Customers"
        ).click()
        expect(operator.locator("#customers")).to_contain_text("Demo customer")
    finally:
        operator.context.close()
