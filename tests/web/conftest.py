"""Fixtures for the web face: the service on loopback, the simulator, a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from smslink.simulator import SimulatorConfig, run_in_thread
from tests.web.site import Site, running_site

TOKEN = "web-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    for name in ("SMSLINK_DATABASE_URL", "SMSLINK_SECRET_KEY", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMSLINK_HOME", str(home))
    return home


@pytest.fixture
def site(home: Path) -> Iterator[Site]:
    with running_site(home) as running:
        yield running


@pytest.fixture
def simulator() -> Iterator[str]:
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1)
    with run_in_thread(config) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser).

    One per test module, not per session: Playwright's synchronous API keeps an event loop
    running in this thread while it is open, and a later test in the same worker that calls
    `asyncio.run` (the in-process CLI tests do) would fail with "cannot be called from a
    running event loop"."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
