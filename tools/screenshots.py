"""``make screenshots``: pictures of the web console's main pages for the README.

Starts ``otphub demo`` in a temporary directory (its own SQLite file, the simulated SIM bank
that answers each purchase with an SMS about three seconds later), makes a little activity
through the API with the printed key, then drives Debian's Chromium through the console
with the printed logins and writes PNGs to ``docs/screenshots/``: desktop width, plus the
live activation view at phone width.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
DESKTOP = ViewportSize(width=1280, height=860)
PHONE = ViewportSize(width=390, height=844)
# What the demo customer buys before the pictures are taken: (service, country); the
# simulator answers each with an SMS and the customer finishes it, so the dashboard's
# charts, the history and the balance have something to show.
ACTIVITY = [("tg", 0), ("wa", 0), ("go", 2), ("vk", 0), ("ig", 16), ("tg", 12), ("ds", 0)]


@dataclass(frozen=True)
class Demo:
    base: str
    api_key: str
    customer: tuple[str, str]  # email, password
    operator: tuple[str, str]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_demo(workdir: Path) -> Iterator[Demo]:
    """``otphub demo`` on a free port in ``workdir``; stopped (SIGTERM) on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPHUB_")}
    env["OTPHUB_EARLY_CANCEL"] = "0"  # the example cancel below needs no wait
    out_path = workdir / "demo.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "otphub", "demo", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while "Press Ctrl+C" not in out_path.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"otphub demo did not start:\n{out_path.read_text()}")
                time.sleep(0.1)
            printed = out_path.read_text()
            key = re.search(r"api_key=([A-Za-z0-9_-]+)", printed)
            logins = dict(
                (who, (email, password))
                for who, email, password in re.findall(
                    r"as the (?:demo )?(customer|operator):\s+email (\S+)\s+password (\S+)",
                    printed,
                )
            )
            if key is None or set(logins) != {"customer", "operator"}:
                raise SystemExit(f"unexpected output of otphub demo:\n{printed}")
            yield Demo(
                f"http://127.0.0.1:{port}", key.group(1), logins["customer"], logins["operator"]
            )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def make_activity(demo: Demo) -> None:
    """Purchases through the customer protocol, each finished once its SMS came; one
    cancelled (the silent service), so the success rate is not a flat 100%."""
    with httpx.Client(base_url=demo.base, timeout=30) as client:

        def say(**params: str | int) -> str:
            answer = client.get(
                "/stubs/handler_api.php", params={"api_key": demo.api_key, **params}
            )
            answer.raise_for_status()
            return answer.text

        bought = []
        for service, country in ACTIVITY:
            answer = say(action="getNumber", service=service, country=country)
            assert answer.startswith("ACCESS_NUMBER:"), answer
            bought.append(answer.split(":")[1])
        for activation_id in bought:
            status = say(action="getStatus", id=activation_id)
            if status == "STATUS_WAIT_CODE":
                # wait= answers at the next change: here, the simulator's SMS.
                status = say(action="getStatus", id=activation_id, wait=20)
            assert status.startswith("STATUS_OK:"), status
            assert say(action="setStatus", status=6, id=activation_id) == "ACCESS_ACTIVATION"
        silent = say(action="getNumber", service="ot", country=2).split(":")[1]
        assert say(action="setStatus", status=8, id=silent) == "ACCESS_CANCEL"


def signed_in(browser: Browser, demo: Demo, who: tuple[str, str], viewport: ViewportSize) -> Page:
    context = browser.new_context(base_url=demo.base, viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/login")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/(admin)?$"))
    return page


def shoot(page: Page, out: Path, name: str, *, full_page: bool = False) -> None:
    # The keyboard focus ring of the last click would show in the picture.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    print(f"wrote {path}")


def customer_pages(browser: Browser, demo: Demo, out: Path) -> None:
    page = signed_in(browser, demo, demo.customer, DESKTOP)
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance")
    shoot(page, out, "customer-balance")

    page.goto("/buy")
    page.get_by_label("Service").select_option("tg")
    page.get_by_label("Country").select_option("0")
    expect(page.locator("#offers .price").first).to_be_visible()
    shoot(page, out, "customer-buy")

    page.get_by_role("button", name="Buy", exact=True).click()
    page.wait_for_url(re.compile(r"/activations/\d+$"))
    activation_url = page.url
    # The simulator's SMS arrives about three seconds later, pushed to the open page.
    expect(page.locator("#sms-list li").first).to_be_visible(timeout=15_000)
    shoot(page, out, "customer-activation")

    phone = signed_in(browser, demo, demo.customer, PHONE)
    phone.goto(activation_url)
    expect(phone.locator("#sms-list li").first).to_be_visible()
    shoot(phone, out, "customer-activation-phone", full_page=True)
    phone.context.close()

    page.get_by_role("button", name="Finish").click()
    expect(page.locator("#state")).to_have_text("Finished")
    page.goto("/history")
    expect(page.locator("#history")).to_be_visible()
    shoot(page, out, "customer-history")
    page.context.close()


def operator_pages(browser: Browser, demo: Demo, out: Path) -> None:
    page = signed_in(browser, demo, demo.operator, DESKTOP)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.locator("figure.chart").first).to_be_visible()
    shoot(page, out, "admin-dashboard", full_page=True)
    page.goto("/admin/offers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Offers and prices")
    shoot(page, out, "admin-offers")
    page.goto("/admin/customers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
    shoot(page, out, "admin-customers")
    page.context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium is missing at {CHROMIUM}: apt-get install chromium")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="otphub-screenshots-") as workdir,
        running_demo(Path(workdir)) as demo,
        sync_playwright() as driver,
    ):
        make_activity(demo)
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        try:
            customer_pages(browser, demo, out)
            operator_pages(browser, demo, out)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
