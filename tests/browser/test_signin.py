"""Signing up, in and out in a real browser, and forms without their CSRF token."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenPage
from tests.browser.people import (
    PASSWORD,
    customer_with_login,
    new_email,
    operator,
    sign_in,
    sign_up,
)
from tests.support import Hub

CSRF_REFUSAL = "This form has expired or did not come from this site."


def h1(page: Page) -> str:
    return page.get_by_role("heading", level=1).inner_text()


def session_cookie(page: Page) -> dict[str, object] | None:
    for cookie in page.context.cookies():
        if cookie.get("name") == "otphub_session":
            return dict(cookie)
    return None


def test_sign_up_then_out_then_in(hub: Hub, page: Page) -> None:
    email = new_email()
    key = sign_up(page, email, name="Alice")
    # The first API key works at once on the customer protocol; the wallet starts empty.
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:0.00"
    cookie = session_cookie(page)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_role("link", name="Go to your balance").click()
    expect(page).to_have_url(hub.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")
    expect(page.locator(".who")).to_have_text(email)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(hub.url + "/login")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert session_cookie(page) is None
    page.goto("/")  # signed out: the console sends us to sign in
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))

    # Keyboard only: type, Tab, type, Enter.
    page.get_by_label("Email").fill(email.upper())  # emails are compared folded
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(hub.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")


def test_sign_up_refusals_keep_what_was_typed(hub: Hub, page: Page) -> None:
    taken = new_email()
    customer_with_login(hub, taken)
    page.goto("/signup")
    page.get_by_label("Name").fill("Bob")
    page.get_by_label("Email").fill(taken)
    page.get_by_label(re.compile(r"^Password \(")).fill(PASSWORD)
    page.get_by_label("Password, again").fill(PASSWORD + "!")
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    expect(page.get_by_label("Email")).to_have_value(taken)
    expect(page.get_by_label("Name")).to_have_value("Bob")

    page.get_by_label(re.compile(r"^Password \(")).fill(PASSWORD)
    page.get_by_label("Password, again").fill(PASSWORD)
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("alert")).to_contain_text("already used by another account")
    assert session_cookie(page) is None


def test_wrong_password_is_refused_plainly(hub: Hub, page: Page) -> None:
    email = new_email()
    customer_with_login(hub, email)
    sign_in(page, email, PASSWORD + "x")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value(email)
    assert session_cookie(page) is None
    sign_in(page, "nobody@example.com")  # an unknown email: the very same answer
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")


def test_sign_in_returns_to_the_page_asked_for(hub: Hub, open_page: OpenPage) -> None:
    customer = open_page()
    email = new_email()
    customer_with_login(hub, email)
    customer.goto("/history")
    expect(customer).to_have_url(re.compile(r"/login\?next=/history$"))
    sign_in(customer, email, path="")
    expect(customer).to_have_url(hub.url + "/history")
    expect(customer.get_by_role("heading", level=1)).to_have_text("History")

    boss = open_page()
    operator_email = operator(hub)
    boss.goto("/admin/customers")
    expect(boss).to_have_url(re.compile(r"/login\?next=/admin/customers$"))
    sign_in(boss, operator_email, path="")
    expect(boss).to_have_url(hub.url + "/admin/customers")
    expect(boss.get_by_role("heading", level=1)).to_have_text("Customers")
    # An operator signing in from /login lands on the dashboard.
    other = open_page()
    sign_in(other, operator_email)
    expect(other).to_have_url(hub.url + "/admin")
    expect(other.get_by_role("heading", level=1)).to_have_text("Dashboard")


@pytest.mark.parametrize("hub_settings", [{"signup": "closed"}])
def test_closed_sign_up(hub: Hub, page: Page) -> None:
    page.goto("/signup")
    expect(page.get_by_text("Sign-up is closed on this server")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_count(0)
    page.goto("/login")
    expect(page.get_by_role("link", name="Create one")).to_have_count(0)


# ---------------------------------------------------------------- CSRF


def drop_csrf(page: Page) -> None:
    """Removes the token from every form on the page, as a form built elsewhere lacks it."""
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")


def test_sign_in_form_without_its_token_is_refused(hub: Hub, page: Page) -> None:
    email = new_email()
    customer_with_login(hub, email)
    page.goto("/login")
    drop_csrf(page)
    with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
        sign_in(page, email, path="")
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text(CSRF_REFUSAL)
    assert session_cookie(page) is None


def test_signed_in_forms_without_a_valid_token_are_refused(hub: Hub, page: Page) -> None:
    email = new_email()
    customer_with_login(hub, email)
    sign_in(page, email)
    expect(page).to_have_url(hub.url + "/")

    drop_csrf(page)
    with page.expect_response(lambda r: r.url.endswith("/logout")) as answer:
        page.get_by_role("button", name="Sign out").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text(CSRF_REFUSAL)
    assert session_cookie(page) is not None  # still signed in: the form did nothing

    # A token from another session (another person's page) is refused too.
    page.goto("/")
    page.evaluate("document.querySelector('input[name=csrf]').value = 'x'.repeat(43)")
    with page.expect_response(lambda r: r.url.endswith("/logout")) as answer:
        page.get_by_role("button", name="Sign out").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text(CSRF_REFUSAL)

    # A POST from a script of this origin without the token, e.g. a form another site
    # made the browser send: refused with the same words.
    refused = page.request.post(hub.url + "/logout", form={"x": "1"})
    assert refused.status == 403
    assert CSRF_REFUSAL in refused.text()
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")
