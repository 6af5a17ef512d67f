"""The web console's front door, on SQLite and PostgreSQL: sign-up, sign-in with limited
attempts, sessions and their cookies, sign-out, CSRF, the security headers and redirects.

Each ``Browser`` is an httpx client with its own cookie jar that never follows redirects, so
a test sees every 303 and every Set-Cookie. The customer and operator pages are other
helpers' work; whether a cookie signs someone in is read from ``GET /login``, which sends a
signed-in visitor home (303 to ``/`` or ``/admin``) and shows the form to anyone else.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import text

from otphub.domain import errors, logins
from otphub.http.console import web
from otphub.http.console.web import PRE_SESSION_COOKIE, SESSION_COOKIE
from otphub.services import accounts
from otphub.services import logins as login_service
from tests.support import Hub

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')
NEW_KEY = re.compile(r'<code id="new-key">([^<]+)</code>')
WRONG = "Wrong email or password."
TOO_MANY = "Too many failed sign-ins"


class Browser:
    """One visitor: a cookie jar, and the address it seems to come from (``address`` is sent
    as X-Forwarded-For, believed from 127.0.0.1 like from a reverse proxy)."""

    def __init__(self, hub: Hub, *, address: str | None = None, https: bool = False) -> None:
        headers = {}
        if address is not None:
            headers["X-Forwarded-For"] = address
        if https:
            headers["X-Forwarded-Proto"] = "https"
        self.hub = hub
        self.http = httpx.Client(
            base_url=hub.url, timeout=60, follow_redirects=False, headers=headers
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token of the form on ``path`` (served with this browser's cookies)."""
        page = self.get(path)
        found = CSRF_FIELD.search(page.text)
        assert found, page.text
        return found.group(1)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.http.post(path, data=data)

    def sign_in(
        self, email: str, password: str = PASSWORD, *, next_url: str | None = None
    ) -> httpx.Response:
        form = {"csrf": self.csrf("/login"), "email": email, "password": password}
        if next_url is not None:
            form["next"] = next_url
        return self.post("/login", form)

    def sign_up(self, email: str, password: str = PASSWORD, name: str = "Ann") -> httpx.Response:
        form = {
            "csrf": self.csrf("/signup"),
            "name": name,
            "email": email,
            "password": password,
            "password_again": password,
        }
        return self.post("/signup", form)

    @property
    def session(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)

    def session_csrf(self) -> str:
        """The token the pages of this browser's session carry in their forms (what
        ``web.render`` puts in them): the HMAC of the session's digest."""
        assert self.session is not None
        return logins.csrf_token(self.hub.rt.secret, logins.token_digest(self.session))

    def home(self) -> str | None:
        """Where ``GET /login`` sends this browser: its console when signed in, else None."""
        page = self.get("/login")
        if page.status_code == 200:
            return None
        assert page.status_code == 303, (page.status_code, page.text)
        return page.headers["location"]

    def sign_out(self) -> httpx.Response:
        return self.post("/logout", {"csrf": self.session_csrf()})

    def close(self) -> None:
        self.http.close()


def rows(hub: Hub, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        async with hub.rt.db.read() as conn:
            return [tuple(r) for r in (await conn.execute(text(statement), params)).all()]

    return hub.call(go())


def customers_count(hub: Hub) -> int:
    return int(rows(hub, "SELECT COUNT(*) FROM customers")[0][0])


def sessions_count(hub: Hub) -> int:
    return int(rows(hub, "SELECT COUNT(*) FROM console_sessions")[0][0])


def customer_with_login(hub: Hub, email: str, password: str = PASSWORD) -> int:
    customer_id, _ = hub.customer_id("1.00")
    hub.call(
        login_service.set_customer_login(
            hub.rt, customer_id=customer_id, email=email, password=password
        )
    )
    return customer_id


def operator(hub: Hub, email: str, password: str = PASSWORD) -> int:
    return hub.call(login_service.add_operator(hub.rt, email=email, password=password))


def set_cookie_of(response: httpx.Response, name: str) -> str:
    """The Set-Cookie header that sets ``name`` (exactly one)."""
    found = [
        value
        for value in response.headers.get_list("set-cookie")
        if value.split("=", 1)[0].strip() == name
    ]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def attributes(set_cookie: str) -> dict[str, str]:
    """A Set-Cookie header's attributes, names folded to lower case."""
    parts = [part.strip() for part in set_cookie.split(";")[1:]]
    pairs = [part.partition("=") for part in parts if part]
    return {name.lower(): value for name, _, value in pairs}


@pytest.fixture
def browser(hub: Hub) -> Any:
    opened = Browser(hub)
    yield opened
    opened.close()


@pytest.fixture
def other(hub: Hub) -> Any:
    opened = Browser(hub)
    yield opened
    opened.close()


# ---------------------------------------------------------------- sign-up


def test_sign_up_signs_in_and_shows_a_working_api_key_once(hub: Hub, browser: Browser) -> None:
    welcome = browser.sign_up("Ann@Example.com", name="Ann's shop")
    assert welcome.status_code == 200, welcome.text
    found = NEW_KEY.search(welcome.text)
    assert found, welcome.text
    api_key = found.group(1)
    assert hub.say(api_key, "getBalance").startswith("ACCESS_BALANCE:")
    # Signed in at once, as a customer.
    assert browser.session is not None
    assert browser.home() == "/"
    stored = rows(hub, "SELECT name, email FROM customers")
    assert stored == [("Ann's shop", "ann@example.com")]
    # The key is not stored in clear, and nothing shows it again.
    assert api_key not in repr(rows(hub, "SELECT * FROM api_keys"))
    assert api_key not in browser.get("/login").text


def test_sign_up_refuses_differing_passwords_short_ones_and_bad_emails(
    hub: Hub, browser: Browser
) -> None:
    differ = browser.post(
        "/signup",
        {
            "csrf": browser.csrf("/signup"),
            "email": "ann@example.com",
            "password": PASSWORD,
            "password_again": PASSWORD + "!",
        },
    )
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    short = browser.sign_up("ann@example.com", password="short")
    assert short.status_code == 400 and "at least 10 characters" in short.text
    bad = browser.sign_up("not an email")
    assert bad.status_code == 400 and "not an email address" in bad.text
    assert customers_count(hub) == 0
    assert browser.session is None


@pytest.mark.parametrize("hub_settings", [{"signup": "closed"}])
def test_closed_sign_up_refuses_with_403_and_creates_nothing(hub: Hub, browser: Browser) -> None:
    page = browser.get("/signup")
    assert page.status_code == 403
    assert "Sign-up is closed" in page.text
    assert 'action="/signup"' not in page.text
    # Even a well-formed POST (with a valid token) makes no account.
    token = browser.csrf("/login")
    refused = browser.post(
        "/signup",
        {"csrf": token, "email": "ann@example.com", "password": PASSWORD},
    )
    refused_again = browser.post(
        "/signup",
        {
            "csrf": token,
            "email": "ann@example.com",
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )
    assert refused.status_code == 403 and refused_again.status_code == 403
    assert customers_count(hub) == 0
    assert browser.session is None
    # The sign-in page does not offer it either; the service refuses too.
    assert 'href="/signup"' not in browser.get("/login").text
    with pytest.raises(errors.SignupClosed):
        hub.call(
            login_service.sign_up(hub.rt, name="x", email="bob@example.com", password=PASSWORD)
        )
    assert customers_count(hub) == 0


def test_sign_up_is_open_by_default_and_the_sign_in_page_says_so(
    hub: Hub, browser: Browser
) -> None:
    assert hub.rt.settings.signup == "open"
    assert browser.get("/signup").status_code == 200
    assert 'href="/signup"' in browser.get("/login").text


# ---------------------------------------------------------------- sign-in


def test_sign_in_with_the_right_password_and_not_with_a_wrong_one(
    hub: Hub, browser: Browser
) -> None:
    customer_with_login(hub, "ann@example.com")
    wrong = browser.sign_in("ann@example.com", "wrong password!")
    assert wrong.status_code == 401 and WRONG in wrong.text
    assert browser.session is None and browser.home() is None
    right = browser.sign_in("ann@example.com")
    assert right.status_code == 303 and right.headers["location"] == "/"
    assert browser.session is not None
    assert browser.home() == "/"


def test_a_wrong_email_and_a_wrong_password_answer_the_same(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    operator(hub, "root@example.com")
    wrong_password = browser.sign_in("ann@example.com", "wrong password!")
    unknown_email = browser.sign_in("zed@example.com", PASSWORD)
    wrong_operator = browser.sign_in("root@example.com", "wrong password!")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_operator.status_code == 401
    # The page echoes the email typed; apart from it, the pages are the same.
    assert wrong_password.text.replace("ann@example.com", "E") == unknown_email.text.replace(
        "zed@example.com", "E"
    )
    assert wrong_operator.text.replace("root@example.com", "E") == unknown_email.text.replace(
        "zed@example.com", "E"
    )
    # A customer without a console login cannot be signed in by any email.
    hub.customer_id()
    assert browser.sign_in("", PASSWORD).status_code == 401


def test_the_email_is_case_insensitive(hub: Hub, browser: Browser) -> None:
    browser.sign_up("Ann.Smith@Example.COM")
    browser.sign_out()
    assert browser.home() is None
    signed = browser.sign_in("  ANN.SMITH@example.com ")
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    operator(hub, "Root@Example.com")
    assert rows(hub, "SELECT email FROM operators") == [("root@example.com",)]
    op = Browser(hub)
    assert op.sign_in("ROOT@EXAMPLE.COM").headers["location"] == "/admin"
    op.close()


def test_five_failures_for_one_email_refuse_even_the_right_password_until_the_window_ends(
    hub: Hub, browser: Browser
) -> None:
    customer_with_login(hub, "ann@example.com")
    # From five addresses: the limit is the email's, wherever the guesses come from.
    for i in range(logins.MAX_FAILURES_PER_EMAIL):
        guesser = Browser(hub, address=f"198.51.100.{i + 1}")
        assert guesser.sign_in("ann@example.com", f"guess number {i}").status_code == 401
        guesser.close()
    limited = browser.sign_in("ann@example.com")
    assert limited.status_code == 429, limited.text
    assert TOO_MANY in limited.text and "15 minute" in limited.text
    assert limited.headers["retry-after"] == str(logins.FAILURE_WINDOW)
    assert browser.session is None
    # Another email from the same address is not limited.
    customer_with_login(hub, "bob@example.com")
    assert Browser(hub).sign_in("bob@example.com").status_code == 303
    # One second before the oldest failure leaves the window: still refused.
    hub.clock.advance(logins.FAILURE_WINDOW - 1)
    assert browser.sign_in("ann@example.com").status_code == 429
    hub.clock.advance(1)
    allowed = browser.sign_in("ann@example.com")
    assert allowed.status_code == 303, allowed.text
    assert browser.home() == "/"


def test_a_refused_attempt_does_not_prolong_the_limit(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    for i in range(logins.MAX_FAILURES_PER_EMAIL):
        assert browser.sign_in("ann@example.com", f"guess number {i}").status_code == 401
    hub.clock.advance(600)
    # Wrong and refused: not recorded, so the window still ends 15 minutes after the guesses.
    assert browser.sign_in("ann@example.com", "another guess").status_code == 429
    hub.clock.advance(300)
    assert browser.sign_in("ann@example.com").status_code == 303


def test_a_successful_sign_in_clears_the_emails_failures(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    for _ in range(2):
        for i in range(logins.MAX_FAILURES_PER_EMAIL - 1):
            assert browser.sign_in("ann@example.com", f"typo number {i}").status_code == 401
        assert browser.sign_in("ann@example.com").status_code == 303
        browser.sign_out()


def test_failures_from_one_address_limit_every_email_from_it(hub: Hub) -> None:
    customer_with_login(hub, "ann@example.com")
    attacker = Browser(hub, address="203.0.113.7")
    for i in range(logins.MAX_FAILURES_PER_ADDRESS):
        answer = attacker.sign_in(f"user{i}@example.com", "guessed password")
        assert answer.status_code == 401, (i, answer.text)
    limited = attacker.sign_in("ann@example.com")
    assert limited.status_code == 429 and TOO_MANY in limited.text
    assert attacker.session is None
    # From another address, the same account signs in.
    elsewhere = Browser(hub, address="192.0.2.44")
    assert elsewhere.sign_in("ann@example.com").status_code == 303
    # And once the window has passed, from the first address too.
    hub.clock.advance(logins.FAILURE_WINDOW)
    assert attacker.sign_in("ann@example.com").status_code == 303
    attacker.close()
    elsewhere.close()


def test_sign_in_with_control_characters_is_a_plain_refusal(hub: Hub, browser: Browser) -> None:
    # PostgreSQL refuses a NUL in text: the attempt must be a 401, never a 500.
    customer_with_login(hub, "ann@example.com")
    for email in ("ann\x00@example.com", "\x00", "not an email\x00"):
        answer = browser.sign_in(email, "wrong password!")
        assert answer.status_code == 401, (email, answer.status_code, answer.text)
    # Not an email: never the account whose email it resembles, even with its password.
    assert browser.sign_in("ann\x00@example.com", PASSWORD).status_code == 401
    signup = browser.sign_up("bob\x00@example.com")
    assert signup.status_code == 400, signup.text
    named = browser.sign_up("bob@example.com", name="Bob\x00")
    assert named.status_code == 400 and "control characters" in named.text, named.text
    assert customers_count(hub) == 1
    # The failures were counted under the text without its control characters.
    counted = rows(hub, "SELECT email FROM login_failures ORDER BY id")
    assert counted[0] == ("ann@example.com",) and ("",) in counted
    assert browser.sign_in("ann@example.com").status_code == 303


# ---------------------------------------------------------------- cookies and sessions


def test_the_session_cookie_is_httponly_lax_and_not_secure_over_http(
    hub: Hub, browser: Browser
) -> None:
    customer_with_login(hub, "ann@example.com")
    form_page = browser.get("/login")
    pre = attributes(set_cookie_of(form_page, PRE_SESSION_COOKIE))
    assert "httponly" in pre and pre["samesite"].lower() == "lax" and "secure" not in pre
    signed = browser.sign_in("ann@example.com")
    cookie = attributes(set_cookie_of(signed, SESSION_COOKIE))
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(logins.CUSTOMER_SESSION_SECONDS)
    assert "secure" not in cookie
    # The token is random and only its digest is stored.
    token = browser.session
    assert token is not None and len(token) >= 43
    stored = rows(hub, "SELECT token_digest FROM console_sessions")
    assert stored == [(logins.token_digest(token),)]


def test_the_session_cookie_is_secure_behind_an_https_proxy(hub: Hub) -> None:
    customer_with_login(hub, "ann@example.com")
    behind = Browser(hub, https=True)
    form_page = behind.get("/login")
    assert "secure" in attributes(set_cookie_of(form_page, PRE_SESSION_COOKIE))
    # httpx keeps Secure cookies for https only: send the pre-session by hand.
    pre = form_page.cookies[PRE_SESSION_COOKIE]
    token = CSRF_FIELD.search(form_page.text)
    assert token
    behind.http.cookies.set(PRE_SESSION_COOKIE, pre)
    signed = behind.http.post(
        "/login",
        data={"csrf": token.group(1), "email": "ann@example.com", "password": PASSWORD},
    )
    assert signed.status_code == 303, signed.text
    cookie = attributes(set_cookie_of(signed, SESSION_COOKIE))
    assert "secure" in cookie and "httponly" in cookie and cookie["samesite"].lower() == "lax"
    behind.close()


def test_the_session_cookie_is_secure_when_the_asgi_scheme_is_https(hub: Hub) -> None:
    customer_with_login(hub, "ann@example.com")
    app = hub.live.app

    async def go() -> tuple[str, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://console.example"
        ) as client:
            page = await client.get("/login")
            token = CSRF_FIELD.search(page.text)
            assert token
            signed = await client.post(
                "/login",
                data={"csrf": token.group(1), "email": "ann@example.com", "password": PASSWORD},
            )
            assert signed.status_code == 303, signed.text
            return (
                set_cookie_of(page, PRE_SESSION_COOKIE),
                set_cookie_of(signed, SESSION_COOKIE),
            )

    pre, session = hub.call(go())
    assert "secure" in attributes(pre)
    assert "secure" in attributes(session) and "httponly" in attributes(session)


def test_sign_out_ends_the_session_on_the_server(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    browser.sign_in("ann@example.com")
    old = browser.session
    assert old is not None and browser.home() == "/"
    out = browser.sign_out()
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert attributes(set_cookie_of(out, SESSION_COOKIE)).get("max-age") == "0"
    assert sessions_count(hub) == 0
    # The old cookie, replayed, signs nobody in.
    replay = Browser(hub)
    replay.http.cookies.set(SESSION_COOKIE, old)
    assert replay.home() is None
    assert hub.call(login_service.signed(hub.rt, old)) is None
    replay.close()


def test_other_sessions_survive_one_sign_out(hub: Hub, browser: Browser, other: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    browser.sign_in("ann@example.com")
    other.sign_in("ann@example.com")
    browser.sign_out()
    assert browser.home() is None
    assert other.home() == "/"


def test_a_customer_session_ends_after_seven_days(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    browser.sign_in("ann@example.com")
    hub.clock.advance(logins.CUSTOMER_SESSION_SECONDS - 1)
    assert browser.home() == "/"
    hub.clock.advance(1)
    assert browser.home() is None
    # A new session purges the expired one: the table keeps live sessions only.
    Browser(hub).sign_in("ann@example.com")
    assert sessions_count(hub) == 1


def test_an_operator_session_ends_after_twelve_hours(hub: Hub, browser: Browser) -> None:
    operator(hub, "root@example.com")
    signed = browser.sign_in("root@example.com")
    cookie = attributes(set_cookie_of(signed, SESSION_COOKIE))
    assert cookie["max-age"] == str(logins.OPERATOR_SESSION_SECONDS)
    hub.clock.advance(logins.OPERATOR_SESSION_SECONDS - 1)
    assert browser.home() == "/admin"
    hub.clock.advance(1)
    assert browser.home() is None


def test_an_operator_lands_on_admin_and_a_customer_on_their_balance(
    hub: Hub, browser: Browser, other: Browser
) -> None:
    operator(hub, "root@example.com")
    customer_with_login(hub, "ann@example.com")
    signed = browser.sign_in("root@example.com")
    assert signed.status_code == 303 and signed.headers["location"] == "/admin"
    assert browser.home() == "/admin"
    browser.sign_out()
    # ``next`` cannot send one kind of account into the other's console.
    assert landing(other, "ann@example.com", "/admin/customers") == "/"
    assert landing(other, "ann@example.com", "/history") == "/history"
    assert landing(browser, "root@example.com", "/keys") == "/admin"
    assert landing(browser, "root@example.com", "/admin/offers") == "/admin/offers"


def landing(browser: Browser, email: str, next_url: str) -> str:
    """Where signing in with ``next`` sends this browser (signed out again after)."""
    signed = browser.sign_in(email, next_url=next_url)
    assert signed.status_code == 303, signed.text
    browser.sign_out()
    return signed.headers["location"]


def test_a_banned_customers_session_shows_the_blocked_page_and_ends(
    hub: Hub, browser: Browser
) -> None:
    customer_id = customer_with_login(hub, "ann@example.com")
    browser.sign_in("ann@example.com")
    until = hub.clock.now() + 3600
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=until))
    blocked = browser.get("/login")
    assert blocked.status_code == 403
    assert "This account is blocked until" in blocked.text
    assert blocked.headers["content-security-policy"]
    # Signed out there and then: no session is left behind that nobody can end.
    assert sessions_count(hub) == 0
    assert "otphub_session=" in blocked.headers["set-cookie"]
    hub.call(accounts.ban_customer(hub.rt, customer_id=customer_id, until=None))
    assert browser.home() is None
    assert browser.sign_in("ann@example.com").status_code == 303
    assert browser.home() == "/"


def test_changing_a_customers_login_ends_their_sessions(
    hub: Hub, browser: Browser, other: Browser
) -> None:
    customer_id = customer_with_login(hub, "ann@example.com")
    browser.sign_in("ann@example.com")
    other.sign_in("ann@example.com")
    assert browser.home() == other.home() == "/"
    hub.call(
        login_service.set_customer_login(
            hub.rt, customer_id=customer_id, email="ann@example.com", password="a new password"
        )
    )
    assert browser.home() is None and other.home() is None
    assert sessions_count(hub) == 0
    assert browser.sign_in("ann@example.com").status_code == 401
    assert browser.sign_in("ann@example.com", "a new password").status_code == 303


# ---------------------------------------------------------------- CSRF


def test_a_post_without_a_csrf_token_is_refused(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    browser.get("/login")  # a pre-session cookie, but no token in the form
    refused = browser.post("/login", {"email": "ann@example.com", "password": PASSWORD})
    assert refused.status_code == 403 and "did not come from this site" in refused.text
    assert browser.session is None
    signup = browser.post(
        "/signup",
        {"email": "bob@example.com", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert signup.status_code == 403 and customers_count(hub) == 1
    # No cookie at all: refused whatever token is sent.
    stranger = Browser(hub)
    forged = stranger.post(
        "/login",
        {"csrf": browser.csrf("/login"), "email": "ann@example.com", "password": PASSWORD},
    )
    assert forged.status_code == 403 and stranger.session is None
    stranger.close()


def test_a_csrf_token_of_another_session_is_refused(
    hub: Hub, browser: Browser, other: Browser
) -> None:
    customer_with_login(hub, "ann@example.com")
    customer_with_login(hub, "bob@example.com")
    # Before sign-in: the token of another visitor's form.
    browser.get("/login")
    refused = browser.post(
        "/login", {"csrf": other.csrf("/login"), "email": "ann@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 403 and browser.session is None
    # Signed in: another session's token does not sign this one out.
    browser.sign_in("ann@example.com")
    other.sign_in("bob@example.com")
    cross = browser.post("/logout", {"csrf": other.session_csrf()})
    assert cross.status_code == 403
    assert browser.home() == "/" and sessions_count(hub) == 2
    # The pre-session token no longer works once signed in: forms are bound to the session.
    pre_token = logins.csrf_token(hub.rt.secret, browser.http.cookies.get(PRE_SESSION_COOKIE) or "")
    assert browser.post("/logout", {"csrf": pre_token}).status_code == 403
    # The refusal page itself carries this session's token in its sign-out form.
    assert browser.session_csrf() in cross.text
    assert browser.post("/logout", {"csrf": browser.session_csrf()}).status_code == 303
    assert browser.home() is None and other.home() == "/"


# ---------------------------------------------------------------- headers and redirects


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def assert_security_headers(response: httpx.Response) -> None:
    policy = response.headers.get("content-security-policy", "")
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in policy, (response.request.url, policy)
    assert "unsafe-inline" not in policy
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)


def test_every_console_answer_carries_the_security_headers(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    assert_security_headers(browser.get("/login"))
    assert_security_headers(browser.get("/signup"))
    assert_security_headers(browser.sign_in("ann@example.com", "wrong password!"))  # 401
    assert_security_headers(browser.post("/login", {"email": "x"}))  # 403, CSRF
    assert_security_headers(browser.sign_in("ann@example.com"))  # 303
    assert_security_headers(browser.get("/login"))  # 303 home
    assert_security_headers(browser.sign_out())


def test_pages_hold_no_inline_script_or_style(hub: Hub, browser: Browser) -> None:
    for path in ("/login", "/signup"):
        html = browser.get(path).text
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, path
        assert " style=" not in html and "<style" not in html, path
        assert re.search(r"\son[a-z]+=", html) is None, path


@pytest.mark.parametrize(
    "evil",
    [
        "//evil.example",
        "//evil.example/login",
        "https://evil.example/",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        " //evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_cannot_send_anyone_to_another_site(hub: Hub, browser: Browser, evil: str) -> None:
    customer_with_login(hub, "ann@example.com")
    form_page = browser.get("/login", next=evil)
    assert "evil.example" not in form_page.text
    signed = browser.sign_in("ann@example.com", next_url=evil)
    assert signed.status_code == 303
    location = signed.headers["location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "\\" not in location
    landed = urlsplit(urljoin(hub.url + "/login", location))
    assert landed.netloc == urlsplit(hub.url).netloc, location


def test_a_stranger_keeps_a_safe_next_through_the_form(hub: Hub, browser: Browser) -> None:
    customer_with_login(hub, "ann@example.com")
    page = browser.get("/login", next="/history")
    assert 'name="next" value="/history"' in page.text


# ---------------------------------------------------------------- what is stored


def test_passwords_are_stored_as_argon2id_hashes_only(hub: Hub, browser: Browser) -> None:
    browser.sign_up("ann@example.com", password="signed up password")
    customer_with_login(hub, "bob@example.com", password="set from the shell")
    operator(hub, "root@example.com", password="operator password")
    stored = rows(hub, "SELECT password_hash FROM customers WHERE email IS NOT NULL") + rows(
        hub, "SELECT password_hash FROM operators"
    )
    assert len(stored) == 3
    everything = repr(stored)
    for (password_hash,) in stored:
        assert password_hash.startswith("$argon2id$"), password_hash
    for password in ("signed up password", "set from the shell", "operator password"):
        assert password not in everything
    # Two customers with the same password get different hashes (salted).
    customer_with_login(hub, "cid@example.com", password="set from the shell")
    (first,), (second,) = rows(
        hub,
        "SELECT password_hash FROM customers WHERE email IN ('bob@example.com', "
        "'cid@example.com') ORDER BY email",
    )
    assert first != second


def test_one_email_is_one_account_customer_or_operator(hub: Hub, browser: Browser) -> None:
    customer_id = customer_with_login(hub, "ann@example.com")
    operator(hub, "root@example.com")
    # Sign-up: an email in use by a customer (whatever its case) or by an operator.
    for email in ("ANN@example.com", "root@example.com"):
        taken = browser.sign_up(email)
        assert taken.status_code == 400 and "already used" in taken.text, email
    assert customers_count(hub) == 1
    assert browser.session is None
    # The shell: an operator with a customer's email, or another operator's.
    for email in ("Ann@Example.com", "root@example.com"):
        with pytest.raises(errors.EmailTaken):
            operator(hub, email)
    # Another customer cannot take it; the same customer may set it again.
    other_id, _ = hub.customer_id()
    for email in ("ann@example.com", "ROOT@example.com"):
        with pytest.raises(errors.EmailTaken):
            hub.call(
                login_service.set_customer_login(
                    hub.rt, customer_id=other_id, email=email, password=PASSWORD
                )
            )
    again = hub.call(
        login_service.set_customer_login(
            hub.rt, customer_id=customer_id, email="Ann@example.com", password="changed password"
        )
    )
    assert again == "ann@example.com"
    with pytest.raises(errors.NotFound):
        hub.call(
            login_service.set_customer_login(
                hub.rt, customer_id=999_999, email="new@example.com", password=PASSWORD
            )
        )
    assert rows(hub, "SELECT COUNT(*) FROM operators") == [(1,)]


def test_concurrent_guesses_get_no_more_tries_than_the_limit(hub: Hub) -> None:
    # Hashing is slow on purpose: guesses sent at once must not all pass the check before
    # the first failure is written.
    customer_with_login(hub, "ann@example.com")
    guesses = 3 * logins.MAX_FAILURES_PER_EMAIL

    async def guess(i: int) -> str:
        try:
            await login_service.sign_in(
                hub.rt, email="ann@example.com", password=f"guess {i:04}", address=f"10.0.0.{i}"
            )
        except errors.SignInRefused:
            return "verified"
        except errors.TooManyAttempts:
            return "refused"
        return "signed in"

    async def all_at_once() -> list[str]:
        return list(await asyncio.gather(*(guess(i) for i in range(guesses))))

    answers = hub.call(all_at_once())
    assert answers.count("signed in") == 0
    assert answers.count("verified") == logins.MAX_FAILURES_PER_EMAIL, answers
    assert answers.count("refused") == guesses - logins.MAX_FAILURES_PER_EMAIL


def test_a_flash_message_of_any_script_survives_its_cookie() -> None:
    """Cookie values are ASCII: a flash with "…" or Cyrillic once failed the response."""
    text = 'Готово… offer 7: 0.50 → 0.55; "quoted" \\ done'
    stored = web.quote_flash(text)
    assert stored.isascii() and ";" not in stored and '"' not in stored and " " not in stored
    assert unquote(stored) == text
