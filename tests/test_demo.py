"""``otphub demo``: the seeded world, the simulated SIM bank, the printed instructions, and
one real run of the command following what it prints."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from otphub import demo
from otphub.db.schema import numbers, offers, sms
from otphub.services import logins
from otphub.workers.simulator import Simulator
from tests.support import Hub

DEMO_COUNTRIES = {0: 40, 2: 20, 12: 20, 16: 20}  # country id -> numbers
POPULAR = ("tg", "wa", "go", "vk", "ig", "fb", "ds", "tw", "am", "mm")
SILENT = "ot"  # "Any other": the simulator never answers it, so the demo can show a cancel
# What the customer types, read from the simulated SMS of each service.
CODE_IN_TEXT: dict[str, re.Pattern[str]] = {
    "tg": re.compile(r"^Telegram code: (\d{5})\n"),
    "wa": re.compile(r"^Your WhatsApp code: (\d{3})-(\d{3})\n"),
    "go": re.compile(r"^G-(\d{6}) is your Google verification code\.$"),
    "vk": re.compile(r"^VK: (\d{5}) - your confirmation code"),
    "ig": re.compile(r"^(\d{3}) (\d{3}) is your Instagram code"),
    "fb": re.compile(r"^FB-(\d{6}) is your Facebook confirmation code$"),
    "ds": re.compile(r"^Your Discord verification code is: (\d{6})$"),
    "tw": re.compile(r"^Your X verification code is (\d{6})\.$"),
    "am": re.compile(r"^(\d{6}) is your Amazon OTP"),
    "mm": re.compile(r"^Your Microsoft account security code is (\d{5})$"),
}


def seeded(hub: Hub) -> tuple[demo.DemoSetup, Simulator]:
    setup = hub.call(demo.seed(hub.rt))
    simulator = Simulator(
        provider_id=setup.provider_id, key=setup.provider_key, base_url=hub.url, delay=3
    )
    return setup, simulator


def deliver(hub: Hub, simulator: Simulator) -> int:
    async def run() -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            return await simulator.deliver_due(hub.rt, client)

    return hub.call(run())


# ---------------------------------------------------------------- the seeded world


def test_seed(hub: Hub) -> None:
    setup, _ = seeded(hub)
    assert setup.numbers == sum(DEMO_COUNTRIES.values()) == 100

    async def inventory() -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int, int]]]:
        async with hub.rt.db.read() as conn:
            phones = [
                (r.phone, r.country_id, r.provider_id) for r in await conn.execute(select(numbers))
            ]
            sold = [
                (r.service, r.country_id, r.price, r.payout)
                for r in await conn.execute(
                    select(offers).where(offers.c.provider_id == setup.provider_id)
                )
            ]
        return phones, sold

    phones, sold = hub.call(inventory())
    assert len(phones) == 100
    assert len({p for p, _, _ in phones}) == 100
    assert {provider for _, _, provider in phones} == {setup.provider_id}
    for country_id, count in DEMO_COUNTRIES.items():
        in_country = [p for p, c, _ in phones if c == country_id]
        assert len(in_country) == count
        prefix = hub.rt.catalog.countries[country_id].phone_prefix
        assert all(p.startswith(prefix) and p.isdigit() for p in in_country), in_country
    offered = {(service, country) for service, country, _, _ in sold}
    assert offered == {(s, c) for s in (*POPULAR, SILENT) for c in DEMO_COUNTRIES}
    assert all(0 < payout <= price for _, _, price, payout in sold)
    assert ("tg", 0, 50, 40) in sold

    assert hub.say(setup.api_key, "getBalance") == "ACCESS_BALANCE:100.00"
    prices = hub.api(setup.api_key, "getPrices", service="tg").json()
    assert prices == {
        str(c): {"tg": {"cost": 0.5, "count": n, "physicalCount": n}}
        for c, n in DEMO_COUNTRIES.items()
    }
    everything = hub.api(setup.api_key, "getPrices").json()
    assert set(everything) == {str(c) for c in DEMO_COUNTRIES}
    assert all(set(everything[str(c)]) == {*POPULAR, SILENT} for c in DEMO_COUNTRIES)

    # The web console's logins: the demo customer (the one of the key) and an operator.
    assert setup.customer_email == "demo@otphub.local"
    assert setup.operator_email == "operator@otphub.local"
    assert setup.customer_password != setup.operator_password
    assert all(len(p) >= 16 for p in (setup.customer_password, setup.operator_password))
    customer = hub.call(
        logins.sign_in(
            hub.rt, email=setup.customer_email, password=setup.customer_password, address="t"
        )
    )
    assert customer.subject.kind == "customer"
    signed = hub.call(logins.signed(hub.rt, customer.token))
    assert signed is not None and signed.customer is not None
    operator = hub.call(
        logins.sign_in(
            hub.rt, email=setup.operator_email, password=setup.operator_password, address="t"
        )
    )
    assert operator.subject.kind == "operator"


def test_seed_passwords_are_new_every_time(hub: Hub) -> None:
    first, second = demo.new_password(), demo.new_password()
    assert first != second
    assert re.fullmatch(r"[A-Za-z0-9]{16}", first), first


# ---------------------------------------------------------------- the simulated SIM bank


def test_simulator_delivers_a_code_after_the_delay(hub: Hub) -> None:
    setup, simulator = seeded(hub)
    key = setup.api_key
    activation_id, phone = hub.buy(key, "tg", country=0)
    assert phone.startswith("7")

    assert deliver(hub, simulator) == 0  # bought just now: not yet
    hub.clock.advance(2)
    assert deliver(hub, simulator) == 0
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"

    hub.clock.advance(2)
    assert deliver(hub, simulator) == 1
    status = hub.say(key, "getStatus", id=activation_id)
    assert re.fullmatch(r"STATUS_OK:\d{5}", status), status
    code = status.split(":")[1]
    full = hub.say(key, "getFullSms", id=activation_id)
    assert full.startswith("FULL_SMS:Telegram code: ")
    assert code in full
    v2 = hub.api(key, "getStatusV2", id=activation_id).json()
    assert v2["sms"]["code"] == code

    assert deliver(hub, simulator) == 0  # one SMS per activation, not one per second
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:99.50"


def test_simulator_codes_are_what_the_customer_types(hub: Hub) -> None:
    setup, simulator = seeded(hub)
    key = setup.api_key
    bought = {service: hub.buy(key, service, country=0)[0] for service in POPULAR}
    hub.clock.advance(3)
    assert deliver(hub, simulator) == len(POPULAR)
    for service, activation_id in bought.items():
        full = hub.say(key, "getFullSms", id=activation_id)
        assert full.startswith("FULL_SMS:"), (service, full)
        match = CODE_IN_TEXT[service].search(full.removeprefix("FULL_SMS:"))
        assert match is not None, (service, full)
        expected = "".join(match.groups())
        status = hub.say(key, "getStatus", id=activation_id)
        assert status == f"STATUS_OK:{expected}", (service, full, status)
        assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:96.35"  # 100 - 3.65


def test_simulator_answers_a_retry_with_a_new_sms(hub: Hub) -> None:
    setup, simulator = seeded(hub)
    key = setup.api_key
    activation_id, _ = hub.buy(key, "wa", country=2)
    hub.clock.advance(3)
    assert deliver(hub, simulator) == 1
    first = hub.say(key, "getStatus", id=activation_id)
    assert re.fullmatch(r"STATUS_OK:\d{6}", first), first

    assert hub.say(key, "setStatus", id=activation_id, status=3) == "ACCESS_RETRY_GET"
    assert hub.say(key, "getStatus", id=activation_id) == first.replace(
        "STATUS_OK:", "STATUS_WAIT_RETRY:"
    )
    hub.clock.advance(3)
    assert deliver(hub, simulator) == 1
    second = hub.say(key, "getStatus", id=activation_id)
    assert re.fullmatch(r"STATUS_OK:\d{6}", second), second

    async def messages() -> int:
        async with hub.rt.db.read() as conn:
            query = (
                select(func.count()).select_from(sms).where(sms.c.activation_id == activation_id)
            )
            return int((await conn.execute(query)).scalar_one())

    assert hub.call(messages()) == 2
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:99.35"


def test_simulator_leaves_other_providers_alone(hub: Hub) -> None:
    setup, simulator = seeded(hub)
    cheaper = hub.stocked(
        count=1, service="tg", country=0, price="0.10", payout="0.08", first_phone=79990000001
    )
    activation_id, phone = hub.buy(setup.api_key, "tg", country=0)
    assert phone == "79990000001"  # the cheaper, real provider
    hub.clock.advance(10)
    assert deliver(hub, simulator) == 0
    assert hub.say(setup.api_key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert hub.push_sms(cheaper, phone, "Your code: 5521").status_code == 200
    assert hub.say(setup.api_key, "getStatus", id=activation_id) == "STATUS_OK:5521"


def test_simulator_stays_silent_for_the_cancel_example(hub: Hub) -> None:
    setup, simulator = seeded(hub)
    key = setup.api_key
    activation_id, _ = hub.buy(key, SILENT, country=2)
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:99.90"
    hub.clock.advance(hub.rt.settings.early_cancel + 1)
    assert deliver(hub, simulator) == 0
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert hub.say(key, "setStatus", id=activation_id, status=8) == "ACCESS_CANCEL"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:100.00"


# ---------------------------------------------------------------- the printed instructions


def printed_urls(printed: str) -> list[str]:
    return re.findall(r"curl ['\"]([^'\"]+)['\"]", printed)


def printed_logins(printed: str) -> dict[str, tuple[str, str]]:
    """The web console's logins as printed: who -> (email, password)."""
    pattern = r"as the (?:demo )?(customer|operator):\s+email (\S+)\s+password (\S+)"
    found = re.findall(pattern, printed)
    return {who: (email, password) for who, email, password in found}


def test_instructions() -> None:
    setup = demo.DemoSetup(
        api_key="ohc_Demo-Key_123",
        provider_id=1,
        provider_key="ohp_secret-provider",
        numbers=100,
        customer_email="demo@otphub.local",
        customer_password="CustomerPass2345",
        operator_email="operator@otphub.local",
        operator_password="OperatorPass6789",
    )
    base = "http://127.0.0.1:8123"
    printed = demo.instructions(base, setup, early_cancel=7)
    assert "api_key=ohc_Demo-Key_123" in printed
    assert "ohp_secret-provider" not in printed  # the provider's key stays private
    assert "100.00" in printed
    assert f"open {base}/login" in printed
    assert printed_logins(printed) == {
        "customer": ("demo@otphub.local", "CustomerPass2345"),
        "operator": ("operator@otphub.local", "OperatorPass6789"),
    }
    url = f"{base}/stubs/handler_api.php?api_key=ohc_Demo-Key_123&action="
    urls = printed_urls(printed)
    assert urls, printed
    assert all(u.startswith(url) for u in urls), urls
    for action in (
        "getBalance",
        "getPrices&service=tg&country=0",
        "getNumber&service=tg&country=0",
        "getStatus&id=$ID&wait=30",
        "getStatusV2&id=$ID",
        "setStatus&status=6&id=$ID",
        f"getNumberV2&service={SILENT}&country=2",
        "setStatus&status=8&id=$ID",
    ):
        assert url + action in urls, action
    assert "sleep 7" in printed  # the cancel example waits out the early-cancel window
    assert "sleep 7" not in demo.instructions(base, setup, early_cancel=3)


# ---------------------------------------------------------------- a real `otphub demo`


@dataclass
class RunningDemo:
    base: str
    printed: str
    api_key: str
    workdir: Path

    def command(self, action: str, *contains: str) -> str:
        """The URL of the first printed curl command for ``action``."""
        for url in printed_urls(self.printed):
            if f"&action={action}&" in url + "&" and all(c in url for c in contains):
                return url
        raise AssertionError(f"no printed curl command for {action} {contains}")

    def get(self, url: str) -> str:
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200
        return answer.text

    def balance(self) -> str:
        return self.get(self.command("getBalance"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DEMO_EARLY_CANCEL = 2  # seconds; shortened so that following the printed cancel is quick


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """``otphub demo --port P`` in an empty directory, without OTPHUB_DATABASE_URL."""
    workdir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPHUB_")}
    env["OTPHUB_EARLY_CANCEL"] = str(DEMO_EARLY_CANCEL)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "otphub"), "demo", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, f"demo exited: {err_path.read_text()}"
                assert time.monotonic() < deadline, (out_path.read_text(), err_path.read_text())
                try:
                    healthy = httpx.get(f"{base}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    healthy = False
                # the commands are printed once the server answers
                if healthy and "Press Ctrl+C" in out_path.read_text():
                    break
                time.sleep(0.1)
            printed = out_path.read_text()
            key = re.search(r"api_key=([A-Za-z0-9_-]+)", printed)
            assert key is not None, printed
            yield RunningDemo(base=base, printed=printed, api_key=key.group(1), workdir=workdir)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@contextmanager
def console_sign_in(
    base: str, email: str, password: str
) -> Iterator[tuple[httpx.Client, httpx.Response]]:
    """Signs in to the web console as a browser would: the form's CSRF token, then POST."""
    with httpx.Client(base_url=base, timeout=10) as client:
        form = client.get("/login")
        assert form.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None, form.text
        fields = {"csrf": token.group(1), "next": "/", "email": email, "password": password}
        yield client, client.post("/login", data=fields)


@pytest.mark.slow
def test_demo_command_printed_logins(running_demo: RunningDemo) -> None:
    """The printed console logins work: the customer is the one of the printed key."""
    demo_run = running_demo
    logins_printed = printed_logins(demo_run.printed)
    assert set(logins_printed) == {"customer", "operator"}, demo_run.printed
    assert f"open {demo_run.base}/login" in demo_run.printed

    email, password = logins_printed["customer"]
    with console_sign_in(demo_run.base, email, password) as (customer, answer):
        assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
        home = customer.get("/")
        assert home.status_code == 200
        shown = re.search(r'<span id="balance"[^>]*>\s*([^<\s]+)\s*</span>', home.text)
        assert shown is not None, home.text
        assert f"ACCESS_BALANCE:{shown.group(1)}" == demo_run.balance()
        assert customer.get("/admin").status_code == 404  # a customer never sees /admin

    email, password = logins_printed["operator"]
    with console_sign_in(demo_run.base, email, password) as (operator, answer):
        assert answer.status_code == 303 and answer.headers["location"] == "/admin", answer.text
        dashboard = operator.get("/admin")
        assert dashboard.status_code == 200
        assert re.search(r"<h1[^>]*>\s*Dashboard\s*</h1>", dashboard.text), dashboard.text

    with console_sign_in(demo_run.base, email, password + "x") as (_, answer):
        assert answer.status_code == 401


@pytest.mark.slow
def test_demo_command_printed_flow(running_demo: RunningDemo) -> None:
    demo_run = running_demo
    assert (demo_run.workdir / "var" / "demo.db").exists()
    assert f"api_key={demo_run.api_key}" in demo_run.printed
    assert demo_run.balance() == "ACCESS_BALANCE:100.00"

    prices = httpx.get(demo_run.command("getPrices", "service=tg", "country=0"), timeout=10).json()
    cost = prices["0"]["tg"]["cost"]
    assert cost == 0.5

    bought = demo_run.get(demo_run.command("getNumber", "service=tg", "country=0"))
    match = re.fullmatch(r"ACCESS_NUMBER:(\d+):(7\d{10})", bought)
    assert match is not None, bought
    activation_id = match.group(1)
    status_url = demo_run.command("getStatus").replace("$ID", activation_id)
    assert status_url.endswith("&wait=30")
    # One request, held until the simulator's SMS (~3 s after purchase) is stored.
    status = demo_run.get(status_url)
    assert status.startswith("STATUS_OK:"), status
    code = status.removeprefix("STATUS_OK:")
    assert re.fullmatch(r"\d{5}", code), status
    v2 = httpx.get(demo_run.command("getStatusV2").replace("$ID", activation_id), timeout=10)
    assert v2.json()["sms"]["code"] == code

    finish = demo_run.command("setStatus", "status=6").replace("$ID", activation_id)
    assert demo_run.get(finish) == "ACCESS_ACTIVATION"
    assert demo_run.balance() == "ACCESS_BALANCE:99.50"  # 100.00 - 0.50, as printed
    assert "# 99.50" in demo_run.printed

    # The printed API v1 command: the same customer, the same money.
    assert f"Bearer {demo_run.api_key}' {demo_run.base}/api/v1/balance" in demo_run.printed
    bearer = {"Authorization": f"Bearer {demo_run.api_key}"}
    v1 = httpx.get(f"{demo_run.base}/api/v1/balance", headers=bearer, timeout=10)
    assert v1.json() == {"balance": 99.5, "currency": "USD"}


@pytest.mark.slow
def test_demo_command_printed_cancel(running_demo: RunningDemo) -> None:
    """The printed cancel example, followed as printed (including its ``sleep``):
    ACCESS_CANCEL and the money back."""
    demo_run = running_demo
    before = demo_run.balance()
    buy = demo_run.command("getNumberV2", f"service={SILENT}", "country=2")
    after_buy = demo_run.printed[demo_run.printed.index(buy) :]
    wait = re.search(r"^\s*sleep (\d+)", after_buy, re.MULTILINE)
    assert wait is not None, after_buy
    assert int(wait.group(1)) == DEMO_EARLY_CANCEL  # the deployment's setting is printed

    bought = httpx.get(buy, timeout=10).json()
    activation_id = str(bought["activationId"])
    assert bought["activationCost"] == 0.1
    cancel = demo_run.command("setStatus", "status=8").replace("$ID", activation_id)
    assert demo_run.get(cancel) == "EARLY_CANCEL_DENIED"  # as the printed comment warns
    time.sleep(int(wait.group(1)))
    status = demo_run.command("getStatus").replace("$ID", activation_id)
    status = status.replace("&wait=30", "")  # no SMS ever comes: do not wait for one
    assert demo_run.get(status) == "STATUS_WAIT_CODE"  # the silent service: no SMS
    assert demo_run.get(cancel) == "ACCESS_CANCEL"
    assert demo_run.get(status) == "STATUS_CANCEL"
    assert demo_run.balance() == before
