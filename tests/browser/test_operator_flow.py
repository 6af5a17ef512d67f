"""The operator's side, in Chromium: a price changed on /admin/offers is what the
customer's picker shows and what the next purchase costs; every change is on record."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import OpenPage
from tests.browser.people import (
    PASSWORD,
    buy,
    customer_with_login,
    new_email,
    operator,
    sign_in,
    top_up,
)
from tests.support import Hub


def test_a_new_price_reaches_the_customers_picker(hub: Hub, open_page: OpenPage) -> None:
    seller = hub.stocked(count=2, service="tg", country=0, price="0.50", payout="0.40")
    email = new_email()
    customer_with_login(hub, email, balance="3.00")
    customer = open_page()
    sign_in(customer, email)
    customer.goto("/buy")
    customer.get_by_label("Service").select_option("tg")
    customer.get_by_label("Country").select_option("0")
    expect(customer.locator("#offers .price")).to_have_text(["0.50"])

    boss = open_page()
    boss_email = operator(hub)
    sign_in(boss, boss_email)
    expect(boss.get_by_role("heading", level=1)).to_have_text("Dashboard")
    boss.get_by_role("link", name="Offers").click()
    expect(boss.get_by_role("heading", level=1)).to_have_text("Offers and prices")
    row = boss.locator("#offers tbody tr").filter(
        has=boss.locator(f'a[href="/admin/providers/{seller.id}"]')
    )
    expect(row).to_have_count(1)
    row.get_by_label("Price", exact=True).fill("0.75")
    row.get_by_role("button", name="Save").click()
    row = boss.locator("#offers tbody tr").filter(
        has=boss.locator(f'a[href="/admin/providers/{seller.id}"]')
    )
    expect(row.get_by_label("Price", exact=True)).to_have_value("0.75")

    # The customer's open picker: choosing again fetches the prices of now.
    customer.get_by_label("Country").select_option("2")
    expect(customer.locator("#offers .price")).to_have_count(0)
    customer.get_by_label("Country").select_option("0")
    expect(customer.locator("#offers .price")).to_have_text(["0.75"])
    customer.reload()
    customer.get_by_label("Service").select_option("tg")
    customer.get_by_label("Country").select_option("0")
    expect(customer.locator("#offers .price")).to_have_text(["0.75"])

    buy(customer, "tg", 0)
    customer.goto("/")
    expect(customer.locator("#balance")).to_have_text("2.25")  # 3.00 - 0.75 set aside

    # Both changes of this test are on record, with who made them.
    top_up(boss, email, "1.00")
    boss.get_by_role("link", name="Changes").click()
    expect(boss.get_by_role("heading", level=1)).to_have_text("Changes")
    rows = boss.locator("main tbody tr")
    expect(rows.filter(has_text="offer.set").filter(has_text=boss_email)).to_have_count(1)
    expect(rows.filter(has_text="customer.top_up").filter(has_text=boss_email)).to_have_count(1)


def test_the_operator_pages_open(hub: Hub, open_page: OpenPage) -> None:
    """Each page of the operator's menu opens with its heading, from the menu."""
    hub.stocked(count=1)
    hub.customer_id()
    boss = open_page()
    sign_in(boss, operator(hub))
    expect(boss.locator("figure.chart figcaption")).to_contain_text(
        ["Activations per minute", "Success rate", "Time to SMS", "Revenue", "Open holds"]
    )
    for link, heading in (
        ("Providers", "Providers"),
        ("Offers", "Offers and prices"),
        ("Numbers", "Numbers"),
        ("Customers", "Customers"),
        ("Audit", "Audit"),
        ("Unmatched SMS", "Unmatched SMS"),
        ("Changes", "Changes"),
        ("Dashboard", "Dashboard"),
    ):
        boss.get_by_role("navigation", name="Main").get_by_role(
            "link", name=link, exact=True
        ).click()
        expect(boss.get_by_role("heading", level=1)).to_have_text(heading)


def test_an_operator_adds_a_customer_who_signs_in(hub: Hub, open_page: OpenPage) -> None:
    """The new-customer form, by its labels: the key is shown once with its copy button, and
    the customer signs in with the email and password chosen there."""
    boss = open_page()
    sign_in(boss, operator(hub))
    boss.goto("/admin/customers")
    email = new_email()
    form = boss.locator("#add-customer")
    form.get_by_label("Name", exact=True).fill("Dora")
    form.get_by_label("Opening balance").fill("4.00")
    form.get_by_label("Email", exact=True).fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Add the customer").click()
    expect(boss.locator("#new-key")).to_have_text(re.compile(r"^\S{20,}$"))
    expect(boss.get_by_role("button", name="Copy")).to_be_visible()
    key = boss.locator("#new-key").inner_text()
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:4.00"
    boss.goto("/admin/customers")
    expect(boss.locator("#new-key")).to_have_count(0)

    dora = open_page()
    sign_in(dora, email)
    expect(dora.locator("#balance")).to_have_text("4.00")
