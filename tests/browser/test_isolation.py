"""What a customer can never open in the console: another customer's activation (its
page, its event stream, its buttons) and any /admin page. Each answers exactly as a page
that does not exist."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from otphub.domain import errors
from tests.browser.conftest import OpenPage
from tests.browser.people import buy, customer_with_login, new_email, operator, sign_in
from tests.support import Hub

NOT_FOUND = "There is no such page."
NO_ACTIVATION = errors.explain("NO_ACTIVATION")
ADMIN_PAGES = (
    "/admin",
    "/admin/providers",
    "/admin/offers",
    "/admin/numbers",
    "/admin/customers",
    "/admin/audit",
    "/admin/sms",
    "/admin/changes",
    "/admin/no-such-page",
)


def csrf_of(page: Page) -> str:
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    return token


def expect_not_found(page: Page, path: str, message: str = NOT_FOUND) -> None:
    answer = page.goto(path)
    assert answer is not None and answer.status == 404, (path, answer and answer.status)
    expect(page.get_by_role("alert")).to_have_text(message)


def test_a_customer_cannot_open_another_customers_activation(hub: Hub, open_page: OpenPage) -> None:
    hub.stocked(count=2)
    alice, bob = new_email("alice"), new_email("bob")
    customer_with_login(hub, alice)
    customer_with_login(hub, bob)
    alice_page, bob_page = open_page(), open_page()
    sign_in(alice_page, alice)
    activation_id = buy(alice_page)
    phone = alice_page.locator("#phone").inner_text()
    sign_in(bob_page, bob)

    # Exactly what an activation that does not exist answers: nothing tells them apart.
    expect_not_found(bob_page, f"/activations/{activation_id + 1000}", NO_ACTIVATION)
    expect_not_found(bob_page, f"/activations/{activation_id}", NO_ACTIVATION)
    expect(bob_page.locator("main")).not_to_contain_text(phone)
    stream = bob_page.request.get(f"/activations/{activation_id}/events")
    assert stream.status == 404
    assert phone not in stream.text()
    # Bob's own valid form token on Alice's buttons: still nothing there.
    token = csrf_of(bob_page)
    for action in ("cancel", "finish", "retry"):
        answer = bob_page.request.post(
            f"/activations/{activation_id}/{action}", form={"csrf": token}
        )
        assert answer.status == 404, (action, answer.status)
    alice_page.reload()
    expect(alice_page.locator("#state")).to_have_text("Waiting for the SMS")
    # Nor does Bob's history list it.
    bob_page.goto("/history")
    expect(bob_page.locator("#history")).not_to_contain_text(phone)


def test_a_customer_never_sees_an_admin_page(hub: Hub, page: Page) -> None:
    email = new_email()
    customer_id, _ = customer_with_login(hub, email, balance="1.00")
    sign_in(page, email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    for path in (*ADMIN_PAGES, f"/admin/customers/{customer_id}"):
        expect_not_found(page, path)
    # Not even with a valid form token: the operator's forms do nothing for a customer.
    page.goto("/")
    answer = page.request.post(
        f"/admin/customers/{customer_id}/topup", form={"csrf": csrf_of(page), "amount": "50"}
    )
    assert answer.status == 404
    page.reload()
    expect(page.locator("#balance")).to_have_text("1.00")


def test_strangers_sign_in_first_and_operators_stay_in_admin(hub: Hub, open_page: OpenPage) -> None:
    stranger = open_page()
    for path in ("/", "/buy", "/history", "/activations/1", "/admin", "/admin/customers"):
        stranger.goto(path)
        expect(stranger).to_have_url(re.compile(r"/login\?next="))
        expect(stranger.get_by_role("heading", level=1)).to_have_text("Sign in")

    boss = open_page()
    sign_in(boss, operator(hub))
    for path in ("/", "/buy", "/history"):
        boss.goto(path)
        expect(boss).to_have_url(hub.url + "/admin")
