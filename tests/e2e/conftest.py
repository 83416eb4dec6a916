"""The browser tests' fixtures: Debian's Chromium driven by Playwright (one browser for
the e2e tests, a fresh context per page) and the example server on the fake NVML."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e import CHROMIUM_ARGS, Server


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Package-scoped, not session-scoped: sync Playwright runs an asyncio loop in this
    thread while it is open, and pytest-django orders other folders' tests after these
    (django-health-check's asyncio.run() fails under a running loop)."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: install Debian's chromium package (scripts/test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """``new_page(width=1280, height=720, **context_options)``: a page in a context of
    its own (``timezone_id``, ``locale``, ...), closed after the test."""
    contexts: list[BrowserContext] = []

    def make(width: int = 1280, height: int = 720, **options: Any) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: NewPage) -> Page:
    """A page at 1280 x 720."""
    return new_page()


KATHMANDU = 5 * 3600 + 45 * 60  # UTC+05:45, no daylight saving: local hours are not UTC's


@pytest.fixture
def kathmandu_page(new_page: NewPage) -> Page:
    """A page at 1400 x 900 in Kathmandu's time (``KATHMANDU`` seconds ahead of UTC)."""
    return new_page(1400, 900, timezone_id="Asia/Kathmandu", locale="en-GB")


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(scenario=..., settings=..., gpus=..., state=...)``: the example
    server (``tests.e2e.Server``), stopped after the test."""
    started: list[Server] = []

    def start(**options: Any) -> Server:
        folder = tmp_path / f"server-{len(started)}"
        folder.mkdir()
        started.append(Server(folder, **options))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> Server:
    """The example server on the fake NVML's lost scenario, three GPUs."""
    return start_server()
