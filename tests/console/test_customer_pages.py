"""The customer's web console over HTTP, on both backends: a signed-in customer buys,
follows the SMS live, finishes, cancels, reads the history and its CSV, manages keys and
webhooks; every refusal in plain words, every form with its CSRF token, nobody else's
activation."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import httpx
import pytest

from otphub.domain import errors
from otphub.services import accounts, logins, webhook_delivery
from tests.api.sse import Stream
from tests.support import Hub
from tests.webhooks.receiver import Receiver, verify

PASSWORD = "correct horse battery"


@pytest.fixture
def hub_settings() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    fake = Receiver().start()
    yield fake
    fake.stop()


class Browser:
    """A signed-in customer's browser: a cookie jar, and the CSRF token of the last page."""

    def __init__(self, hub: Hub, email: str, balance: str = "10.00") -> None:
        self.hub = hub
        self.customer_id, self.api_key = hub.customer_id(balance, name=email)
        hub.call(
            logins.set_customer_login(
                hub.rt, customer_id=self.customer_id, email=email, password=PASSWORD
            )
        )
        self.http = httpx.Client(base_url=hub.url, timeout=30, follow_redirects=False)
        self.csrf = ""
        page = self.get("/login")
        signed = self.post("/login", email=email, password=PASSWORD, next="/")
        assert signed.status_code == 303, signed.text
        assert signed.headers["location"] == "/"
        assert page.status_code == 200

    def get(self, path: str, **params: str) -> httpx.Response:
        response = self.http.get(path, params=params)
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, *, csrf: bool = True, **fields: str) -> httpx.Response:
        return self.submit(path, fields, csrf=csrf)

    def submit(self, path: str, fields: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        data = dict(fields)
        if csrf:
            data["csrf"] = self.csrf
        response = self.http.post(path, data=data)
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, (response.status_code, response.text[:500])
        return self.get(response.headers["location"])

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def browser(hub: Hub) -> Iterator[Browser]:
    opened = Browser(hub, "alice@example.com")
    yield opened
    opened.close()


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert found, f"no #{element_id}"
    return found.group(1).strip()


def error_of(html: str) -> str:
    found = re.search(r'<p class="error" role="alert"[^>]*>([^<]*)</p>', html)
    assert found, "no error shown"
    return found.group(1)


def buy(browser: Browser, **fields: str) -> httpx.Response:
    page = browser.get("/buy")
    key = re.search(r'name="purchase" value="([^"]+)"', page.text)
    values = {"service": "tg", "country": "0", "operator": "", "max_price": "", "do": "buy"}
    values["purchase"] = key.group(1) if key else ""
    values.update(fields)
    return browser.submit("/buy", values)


def test_strangers_are_sent_to_sign_in(hub: Hub) -> None:
    for path in ("/", "/buy", "/history", "/keys", "/webhooks", "/activations/1"):
        answer = hub.http.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")


def test_balance_and_movements(hub: Hub, browser: Browser) -> None:
    home = browser.get("/")
    assert home.status_code == 200
    assert "<h1>Balance</h1>" in home.text
    assert text_of(home.text, "balance") == "10.00"
    assert 'id="movements"' in home.text and "Top-up" in home.text and "+10.00" in home.text
    seller = hub.stocked(count=2, price="0.75")
    bought = buy(browser)
    activation_id = int(bought.headers["location"].rsplit("/", 1)[1])
    home = browser.get("/")
    assert text_of(home.text, "balance") == "9.25"
    assert "Set aside for a number" in home.text and "−0.75" in home.text
    assert f'href="/activations/{activation_id}"' in home.text  # live, and in the movements
    phone = re.search(r'id="phone">(\d+)<', browser.get(f"/activations/{activation_id}").text)
    assert phone
    hub.push_sms(seller, phone.group(1), "Your code: 123456")
    browser.get(f"/activations/{activation_id}")
    browser.follow(browser.post(f"/activations/{activation_id}/finish"))
    home = browser.get("/")
    assert text_of(home.text, "balance") == "9.25"
    assert "Paid: the money set aside was spent" in home.text


def test_buy_page_lists_prices_and_stock(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=2, price="0.50")
    hub.stocked(count=3, price="0.80", first_phone=79000000100, operator="beeline")
    page = browser.get("/buy", service="tg", country="0")
    assert page.status_code == 200
    assert "<h1>Buy a number</h1>" in page.text
    for element in (
        'id="service" name="service"',
        'id="country" name="country"',
        'id="operator" name="operator"',
        'id="max_price" name="max_price"',
        'for="service"',
        'for="country"',
        'for="operator"',
        'for="max_price"',
    ):
        assert element in page.text
    assert '<option value="beeline">beeline</option>' in page.text
    cells = re.findall(r'class="num price">([^<]+)</td><td class="num stock">(\d+)<', page.text)
    assert cells == [("0.50", "2"), ("0.80", "3")]
    fragment = browser.get("/buy/offers", service="tg", country="0", operator="beeline")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="offers"' in fragment.text
    assert re.findall(r'class="num price">([^<]+)<', fragment.text) == ["0.80"]
    other = browser.get("/buy/offers", service="wa", country="0")
    assert "No number is free" in other.text
    unknown = browser.get("/buy/offers", service="nope", country="0")
    assert unknown.status_code == 400
    assert errors.explain("BAD_SERVICE") in unknown.text
    options = browser.get("/buy/operators", country="0")
    assert '<option value="">any</option>' in options.text and "beeline" in options.text


def test_buy_then_sms_then_finish(hub: Hub, browser: Browser) -> None:
    seller = hub.stocked(count=1, price="0.50")
    bought = buy(browser, max_price="0.60")
    assert bought.status_code == 303
    location = bought.headers["location"]
    assert re.fullmatch(r"/activations/\d+", location)
    activation_id = int(location.rsplit("/", 1)[1])
    page = browser.follow(bought)
    assert f"<h1>Activation {activation_id}</h1>" in page.text
    assert text_of(page.text, "phone") == "79000000001"
    assert text_of(page.text, "state") == "Waiting for the SMS"
    assert 'data-copy="#phone"' in page.text
    assert "You bought +79000000001 for 0.50" in page.text  # the flash
    hub.push_sms(seller, "79000000001", "Telegram code: 48213. Do not give it to anyone")
    page = browser.get(location)
    assert text_of(page.text, "state") == "SMS received"
    assert '<code class="code" id="code-' in page.text and ">48213</code>" in page.text
    assert "Telegram code: 48213. Do not give it to anyone" in page.text
    retried = browser.follow(browser.post(f"{location}/retry"))
    assert text_of(retried.text, "state") == "Waiting for another SMS"
    finished = browser.follow(browser.post(f"{location}/finish"))
    assert text_of(finished.text, "state") == "Finished"
    assert re.search(r'id="finish"[^>]* disabled', finished.text)
    assert re.search(r'id="cancel"[^>]* disabled', finished.text)
    again = browser.post(f"{location}/cancel")
    assert again.status_code == 409
    assert error_of(again.text) == errors.explain("BAD_STATUS")


def test_the_same_buy_form_sent_twice_buys_once(hub: Hub, browser: Browser) -> None:
    """A double click or a re-posted form: the second submit answers with the first
    purchase (API v1's idempotent purchase, keyed by the form), and pays nothing more."""
    hub.stocked(count=2, price="0.50")
    page = browser.get("/buy")
    found = re.search(r'name="purchase" value="([^"]+)"', page.text)
    assert found
    values = {"service": "tg", "country": "0", "operator": "", "max_price": "", "do": "buy"}
    values["purchase"] = found.group(1)
    first = browser.submit("/buy", values)
    second = browser.submit("/buy", values)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert text_of(browser.get("/").text, "balance") == "9.50"
    # A new form is a new purchase.
    third = buy(browser)
    assert third.headers["location"] != first.headers["location"]
    assert text_of(browser.get("/").text, "balance") == "9.00"


def test_refusals_in_plain_words(hub: Hub) -> None:
    poor = Browser(hub, "poor@example.com", balance="0.10")
    try:
        hub.stocked(count=1, price="0.50")
        refused = buy(poor)
        assert refused.status_code == 402
        assert error_of(refused.text) == errors.explain("NO_BALANCE")
        assert 'id="service"' in refused.text  # the buying page again, its choice kept
        too_cheap = buy(poor, max_price="0.20")
        assert too_cheap.status_code == 400
        assert error_of(too_cheap.text) == errors.explain("WRONG_MAX_PRICE:0.50")
        nonsense = buy(poor, max_price="cheap")
        assert nonsense.status_code == 400
        assert "must be an amount" in error_of(nonsense.text)
        unknown = buy(poor, country="99999")
        assert unknown.status_code == 400
        assert error_of(unknown.text) == errors.explain("BAD_COUNTRY")
        none_left = buy(poor, service="wa")
        assert none_left.status_code == 404
        assert error_of(none_left.text) == errors.explain("NO_NUMBERS")
    finally:
        poor.close()


def test_early_cancel_is_refused_then_allowed(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=1, price="0.50")
    location = buy(browser).headers["location"]
    browser.get(location)
    early = browser.post(f"{location}/cancel")
    assert early.status_code == 409
    assert error_of(early.text) == (
        "An activation cannot be cancelled in the first minutes after purchase."
    )
    assert text_of(early.text, "state") == "Waiting for the SMS"
    hub.clock.advance(hub.rt.settings.early_cancel)
    cancelled = browser.follow(browser.post(f"{location}/cancel"))
    assert text_of(cancelled.text, "state") == "Cancelled"
    assert text_of(browser.get("/").text, "balance") == "10.00"


def test_an_expired_activation_says_so(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=1)
    location = buy(browser).headers["location"]
    hub.clock.advance(3600)
    page = browser.get(location)
    assert text_of(page.text, "state") == "Expired"


def test_another_customers_activation_is_not_found(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=1)
    other_key = hub.customer("5.00", name="bob")
    activation_id, phone = hub.buy(other_key)
    for path in (f"/activations/{activation_id}", "/activations/999999"):
        page = browser.get(path)
        assert page.status_code == 404
        assert errors.explain("NO_ACTIVATION") in page.text
        assert phone not in page.text
    browser.get("/")
    refused = browser.post(f"/activations/{activation_id}/finish")
    assert refused.status_code == 404
    assert browser.http.get(f"/activations/{activation_id}/events").status_code == 404
    assert browser.get("/activations/abc").status_code == 400


def test_forms_without_csrf_are_refused(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=1)
    for path in ("/buy", "/keys", "/webhooks", "/activations/1/finish", "/keys/1/revoke"):
        answer = browser.post(path, csrf=False, service="tg", url="http://127.0.0.1:9/")
        assert answer.status_code == 403, path
        assert "did not come from this site" in answer.text
    assert text_of(browser.get("/").text, "balance") == "10.00"  # nothing bought


def test_history_filters_and_csv(hub: Hub, browser: Browser) -> None:
    seller = hub.stocked(count=3, price="0.50")
    hub.stocked(count=1, service="wa", price="0.30", payout="0.20", first_phone=79000000200)
    first = int(buy(browser).headers["location"].rsplit("/", 1)[1])
    hub.push_sms(seller, "79000000001", "Code 111222")
    browser.get(f"/activations/{first}")
    browser.post(f"/activations/{first}/finish")
    hub.clock.advance(86400 * 2)
    second = int(buy(browser, service="wa").headers["location"].rsplit("/", 1)[1])
    page = browser.get("/history")
    assert "<h1>History</h1>" in page.text
    rows = re.findall(r'<td><a href="/activations/(\d+)">', page.text)
    assert rows == [str(second), str(first)]
    only_tg = browser.get("/history", service="tg")
    assert re.findall(r'<td><a href="/activations/(\d+)">', only_tg.text) == [str(first)]
    finished = browser.get("/history", state="finished")
    assert re.findall(r'<td><a href="/activations/(\d+)">', finished.text) == [str(first)]
    assert "111222" in finished.text
    day = hub.rt.timestamp(hub.clock.now())[:10]
    today = browser.get("/history", **{"from": day, "to": day})
    assert re.findall(r'<td><a href="/activations/(\d+)">', today.text) == [str(second)]
    assert 'href="/history.csv?service=tg"' in only_tg.text and "Download CSV" in only_tg.text
    bad = browser.get("/history", **{"from": "30/11/2026"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in error_of(bad.text)
    far = browser.get("/history", to="9999-12-31")
    assert far.status_code == 400 and "out of range" in error_of(far.text)
    exported = browser.http.get("/history.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"].startswith("attachment")
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0] == [
        "id",
        "service",
        "country",
        "phone",
        "price",
        "state",
        "code",
        "created",
        "finished",
    ]
    assert [r[0] for r in table[1:]] == [str(second), str(first)]
    assert table[2][1:7] == ["tg", "0", "79000000001", "0.50", "finished", "111222"]
    assert table[2][8] != "" and table[1][5] == "waiting" and table[1][8] == ""
    filtered = browser.http.get("/history.csv", params={"service": "wa"})
    assert [r[0] for r in csv.reader(io.StringIO(filtered.text))][1:] == [str(second)]


def test_keys_create_and_revoke(hub: Hub, browser: Browser) -> None:
    page = browser.get("/keys")
    assert "<h1>API keys</h1>" in page.text and "Create a key" in page.text
    assert "EARLY_CANCEL_DENIED" in page.text  # every refusal word explained
    created = browser.post("/keys")
    assert created.status_code == 200
    new_key = text_of(created.text, "new-key")
    assert new_key.startswith("ohc_")
    assert hub.say(new_key, "getBalance") == "ACCESS_BALANCE:10.00"
    assert new_key not in browser.get("/keys").text  # shown once
    key_ids = re.findall(r'action="/keys/(\d+)/revoke"', browser.get("/keys").text)
    assert len(key_ids) == 2  # the first key and the new one
    newest = max(key_ids, key=int)
    revoked = browser.follow(browser.post(f"/keys/{newest}/revoke"))
    assert "revoked" in revoked.text
    assert hub.say(new_key, "getBalance") == "BAD_KEY"
    assert hub.say(browser.api_key, "getBalance") == "ACCESS_BALANCE:10.00"
    # Nobody else's key: another customer's is not found, and stays valid.
    other_id, other_key = hub.customer_id("1.00", name="bob")
    other_keys = hub.call(accounts.list_keys(hub.rt, kind="customer", owner_id=other_id))
    browser.get("/keys")
    assert browser.post(f"/keys/{other_keys[0].id}/revoke").status_code == 404
    assert hub.say(other_key, "getBalance") == "ACCESS_BALANCE:1.00"


def test_webhooks_add_test_remove(hub: Hub, browser: Browser, receiver: Receiver) -> None:
    page = browser.get("/webhooks")
    assert "<h1>Webhooks</h1>" in page.text and 'for="url"' in page.text
    bad = browser.post("/webhooks", url="ftp://example.com/")
    assert bad.status_code == 400
    assert error_of(bad.text).startswith("The webhook URL must start with http")
    added = browser.post("/webhooks", url=receiver.base + "/hook")
    assert added.status_code == 200
    secret = text_of(added.text, "new-secret")
    assert secret.startswith("ohw_")
    webhook_id = re.findall(r'action="/webhooks/(\d+)/test"', added.text)[0]
    assert "Nothing sent yet." in added.text
    queued = browser.follow(browser.post(f"/webhooks/{webhook_id}/test"))
    assert "A test message is on its way" in queued.text
    assert "Test message" in queued.text and "waiting to be sent" in queued.text
    assert receiver.requests == []  # nothing is sent inside the request
    assert hub.call(webhook_delivery.deliver_due(hub.rt)) == 1
    [delivery] = receiver.requests
    assert delivery.path.strip("/") == "hook"
    verify(secret, delivery.headers["x-otphub-signature"], delivery.body)
    assert b'"test":true' in delivery.body
    assert "delivered" in browser.get("/webhooks").text
    removed = browser.follow(browser.post(f"/webhooks/{webhook_id}/remove"))
    assert "The webhook is removed" in removed.text
    assert f'action="/webhooks/{webhook_id}/test"' not in removed.text
    assert browser.post(f"/webhooks/{webhook_id}/test").status_code == 404


def test_the_event_stream_follows_the_session(hub: Hub, browser: Browser) -> None:
    seller = hub.stocked(count=1)
    location = buy(browser).headers["location"]
    cookie = "; ".join(f"{name}={value}" for name, value in browser.http.cookies.items())
    stream = Stream(hub.url, f"{location}/events", {"Cookie": cookie})
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        state = stream.next()
        assert state is not None and state.kind == "state"
        assert state.json()["state"] == "waiting"
        hub.push_sms(seller, "79000000001", "Your code 654321")
        sms = stream.next()
        assert sms is not None and sms.kind == "sms"
        assert sms.json()["code"] == "654321"
        changed = stream.next()
        assert changed is not None and changed.kind == "state"
        assert changed.json()["state"] == "code"
    finally:
        stream.close()
    # Without the session: sent to sign in, no stream.
    assert hub.http.get(f"{location}/events").status_code == 303


def test_show_prices_without_javascript_buys_nothing(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=1, service="wa", price="0.30", payout="0.20")
    shown = buy(browser, service="wa", do="prices")
    assert shown.status_code == 200
    assert re.findall(r'class="num price">([^<]+)<', shown.text) == ["0.30"]
    assert re.search(r'<option value="wa" selected>', shown.text)
    assert text_of(browser.get("/").text, "balance") == "10.00"


def test_history_pages(hub: Hub, browser: Browser) -> None:
    hub.stocked(count=52, price="0.10", payout="0.05")
    bought = [hub.buy(browser.api_key)[0] for _ in range(52)]
    first = browser.get("/history")
    ids = re.findall(r'<td><a href="/activations/(\d+)">', first.text)
    assert ids == [str(i) for i in reversed(bought)][:50]
    assert 'href="/history?page=2" rel="next">Older<' in first.text
    assert 'rel="prev"' not in first.text
    second = browser.get("/history", page="2")
    ids = re.findall(r'<td><a href="/activations/(\d+)">', second.text)
    assert ids == [str(bought[1]), str(bought[0])]
    assert 'href="/history" rel="prev">Newer<' in second.text
    assert 'rel="next"' not in second.text
