"""The people of the browser tests: customers who sign up or are given a login, operators
added from the shell, and what each does to sign in."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from otphub.services import logins
from tests.support import Hub

PASSWORD = "correct horse battery"
API_KEY = re.compile(r"ohc_[A-Za-z0-9_-]+")


def new_email(who: str = "customer") -> str:
    return f"{who}-{uuid.uuid4().hex[:8]}@example.com"


def sign_up(page: Page, email: str, *, name: str = "", password: str = PASSWORD) -> str:
    """Creates an account from /signup; returns the API key the welcome page shows once."""
    page.goto("/signup")
    if name:
        page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile(r"^Password \(")).fill(password)
    page.get_by_label("Password, again").fill(password)
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is ready")
    key = page.locator("#new-key").inner_text().strip()
    assert API_KEY.fullmatch(key), key
    return key


def sign_in(page: Page, email: str, password: str = PASSWORD, *, path: str = "/login") -> None:
    """Signs in from the form at ``path`` (``/login``, or a page that sent us there)."""
    if path:
        page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def customer_with_login(
    hub: Hub, email: str, *, balance: str = "10.00", password: str = PASSWORD
) -> tuple[int, str]:
    """A customer made from the shell and given a console login; (id, API key)."""
    customer_id, key = hub.customer_id(balance=balance, name=email.split("@")[0])
    hub.call(
        logins.set_customer_login(hub.rt, customer_id=customer_id, email=email, password=password)
    )
    return customer_id, key


def operator(hub: Hub, email: str = "", *, password: str = PASSWORD) -> str:
    """An operator login (``otphub operator add``); returns its email."""
    email = email or new_email("operator")
    hub.call(logins.add_operator(hub.rt, email=email, password=password))
    return email


def top_up(boss: Page, who: str, amount: str) -> int:
    """The operator finds the customer (id, name or email) under /admin/customers and tops
    them up from the customer's page; returns the customer's id."""
    boss.goto("/admin/customers")
    boss.get_by_label("Id, name or email").fill(who)
    boss.get_by_role("button", name="Search").click()
    rows = boss.locator("#customers tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link").click()
    heading = boss.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Customer \d+$"))
    customer_id = int(heading.inner_text().split()[1])
    before = boss.locator("#balance").inner_text()
    boss.get_by_label("Amount").fill(amount)
    boss.get_by_role("button", name="Top up").click()
    expect(boss.locator("#balance")).not_to_have_text(before)
    return customer_id


def buy(page: Page, service: str = "tg", country: int = 0) -> int:
    """Buys from /buy; returns the activation's id (the page shows it)."""
    page.goto("/buy")
    page.get_by_label("Service").select_option(service)
    page.get_by_label("Country").select_option(str(country))
    page.get_by_role("button", name="Buy", exact=True).click()
    expect(page).to_have_url(re.compile(r"/activations/\d+$"))
    activation_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Activation {activation_id}")
    return activation_id
