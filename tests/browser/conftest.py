"""Browser tests: Playwright drives Debian's Chromium (``/usr/bin/chromium``, never a
downloaded browser) through the web console of the test's ``hub`` (SQLite and PostgreSQL).

One Chromium per test module (a second or two to start): Playwright's sync API keeps an
event loop running in the test's thread while it is open, and the other modules that a
pytest worker runs next call ``asyncio.run`` there. Every page gets a fresh browser context,
so no cookie or session leaks from one test (or one customer) to another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support import Hub

CHROMIUM = os.environ.get("OTPHUB_TEST_CHROMIUM", "/usr/bin/chromium")
# Short waits: the console answers in milliseconds; a live update that takes seconds is a
# failure, not something to wait out.
EXPECT_TIMEOUT_MS = 5_000
ACTION_TIMEOUT_MS = 10_000

expect.set_options(timeout=EXPECT_TIMEOUT_MS)

OpenPage = Callable[[], Page]


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests need Debian's Chromium "
            "(apt-get install chromium; `make test` and .ci/run install it when missing)",
            pytrace=False,
        )
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    launched = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def open_page(hub: Hub, browser: Browser) -> Iterator[OpenPage]:
    """Opens pages on the hub, each in a context of its own (its own cookies: another
    person). They close before the hub does, so no event stream outlives its server."""
    contexts: list[BrowserContext] = []

    def opened() -> Page:
        context = browser.new_context(base_url=hub.url)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        # Forms with data-confirm ask first; the person in these tests says yes.
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield opened
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: OpenPage) -> Page:
    return open_page()
