"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright).

Starts the example server on the fake NVML (three GPUs, one lost), waits for the cards,
checks the numbers shown equal the API's, changes the fake data and sees the page update
in place, and sees the page say so when the API cannot be reached. A screenshot is
saved (``GPU_MONITOR_SCREENSHOT=docs/dashboard.png`` to refresh the README's picture).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.e2e


class Server:
    def __init__(
        self,
        tmp_path: Path,
        scenario: str = "lost",
        settings: str = "example_project.settings",
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "nvml-state.json"
        self.state.write_text("{}")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "FAKE_NVML_GPUS": "3",
            "FAKE_NVML_SCENARIO": scenario,
            "FAKE_NVML_STATE_FILE": str(self.state),
            "DJANGO_SETTINGS_MODULE": settings,
            "DJANGO_DEBUG": "1",  # runserver serves the static files
            "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        }
        self.env = env
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.log = (tmp_path / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(150):
            try:
                self.get("/api/gpu/status")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the example server did not start")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: install Debian's chromium package (scripts/test does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1280, "height": 720})
        browser.close()


def card_text(page: Page, index: int, field: str) -> str:
    return page.locator(f'.card[data-index="{index}"] [data-field="{field}"]').inner_text()


def test_dashboard_shows_updates_and_reports_an_unreachable_api(
    server: Server, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")

    api = server.get("/api/gpu/devices")
    assert page.locator("#cards .card").count() == api["count"] == 3
    for device in api["devices"]:
        i = device["index"]
        assert card_text(page, i, "name") == device["name"]
        if device["is_available"]:
            used, total = device["used_memory_mb"], device["total_memory_mb"]
            assert (
                card_text(page, i, "memory")
                == f"{used} / {total} MiB ({round(100 * used / total)}%)"
            )
            assert card_text(page, i, "utilization") == f"{device['utilization_percent']}%"
            assert card_text(page, i, "temperature") == f"{device['temperature_c']} °C"
        else:
            assert "unavailable" in (
                page.locator(f'.card[data-index="{i}"]').get_attribute("class") or ""
            )
            assert card_text(page, i, "error") == f"Unavailable: {device['error_message']}"
    driver = server.get("/api/gpu/driver")
    assert page.locator("#driver-version").inner_text() == driver["driver_version"]

    # Change the data under the running server: the page updates in place.
    page.evaluate("window.notReloaded = true")
    server.state.write_text(
        json.dumps({"0": {"temperature": 77, "utilization_gpu": 93, "used_v2": 61170 * MIB}})
    )
    page.wait_for_function(
        """document.querySelector('.card[data-index="0"] [data-field="temperature"]')
               .textContent === '77 °C'"""
    )
    assert page.evaluate("window.notReloaded") is True
    assert card_text(page, 0, "utilization") == "93%"
    assert card_text(page, 0, "memory") == "61170 / 81559 MiB (75%)"
    assert "high" in (
        page.locator('.card[data-index="0"] [data-bar="utilization"]').get_attribute("class") or ""
    )
    assert server.get("/api/gpu/devices")["devices"][0]["temperature_c"] == 77

    page.wait_for_timeout(800)  # let the bars finish their 0.4 s transition
    screenshot = Path(os.environ.get("GPU_MONITOR_SCREENSHOT", tmp_path / "dashboard.png"))
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")

    # A phone: the cards stack in one column. Dark mode: the page follows it.
    page.set_viewport_size({"width": 390, "height": 844})
    boxes = [page.locator(f'.card[data-index="{i}"]').bounding_box() for i in range(3)]
    assert all(box is not None for box in boxes)
    assert len({round(box["x"]) for box in boxes if box}) == 1
    assert all(box["width"] < 390 for box in boxes if box)
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    page.emulate_media(color_scheme="dark")
    assert page.evaluate(background) != light

    # The API goes away: the page says so and keeps the last data.
    server.stop()
    page.wait_for_selector("#api-error:not([hidden])", timeout=10_000)
    assert page.locator("#api-error").inner_text().startswith("Cannot reach the GPU API")
    assert card_text(page, 0, "temperature") == "77 °C"


def test_processes_fill_in_and_follow_the_api(tmp_path: Path, page: Page) -> None:
    """Processes opened to anyone (tests/e2e/settings_open_processes.py) on the H100 load
    capture: each card lists its processes, and a new process appears without a reload."""
    server = Server(tmp_path, scenario="load", settings="tests.e2e.settings_open_processes")
    try:
        page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
        page.wait_for_function(
            "document.getElementById('updated').textContent.startsWith('Updated')"
        )
        items = page.locator('.card[data-index="0"] [data-field="processes"] li')
        assert items.count() == 3
        assert items.nth(0).locator(".pid").inner_text() == "11345"
        assert items.nth(0).locator(".used").inner_text() == "15690 MiB"
        width = items.nth(0).locator(".fill").evaluate("e => e.style.width")
        assert width.startswith("19.2")  # 15690 of 81559 MiB

        page.evaluate("window.notReloaded = true")
        server.state.write_text(
            json.dumps({"0": {"processes": [{"pid": 4242, "usedGpuMemory": 40960 * MIB}]}})
        )
        page.wait_for_function(
            """document.querySelector('.card[data-index="0"] [data-field="processes"] .pid')
                   .textContent === '4242'"""
        )
        assert page.evaluate("window.notReloaded") is True
        assert items.count() == 1
        assert items.nth(0).locator(".used").inner_text() == "40960 MiB"
    finally:
        server.stop()


def test_charts_fill_in_while_the_recorder_runs(server: Server, page: Page) -> None:
    """The example project with gpu_record beside it (as scripts/example runs them): the
    cards' charts draw the recorded samples and the lost GPU's event is listed."""
    recorder = subprocess.Popen(
        [sys.executable, "manage.py", "gpu_record", "--interval", "1"],
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
        page.wait_for_function(
            """(() => {
                const line = document.querySelector(
                    '.card[data-index="0"] [data-chart="utilization"] .line');
                return line && line.getAttribute('d').startsWith('M');
            })()""",
            timeout=30_000,
        )
        ranges = page.locator('.card[data-index="0"] [data-range="temperature"]').inner_text()
        assert ranges == "max 34 °C"
        lost = page.locator('.card[data-index="2"] [data-field="events"] li')
        lost.first.wait_for(timeout=30_000)
        assert "gpu lost: GPU is lost" in lost.first.inner_text()
        assert "bad" in (lost.first.get_attribute("class") or "")
        page.locator('[data-window="-7d"]').click()
        assert page.locator('[data-window="-7d"]').get_attribute("aria-pressed") == "true"
        history = server.get("/api/gpu/history?since=-7d&points=120")
        assert history["series"][0]["temperature_c"][-1] in (34, None)
    finally:
        recorder.terminate()
        recorder.wait(10)
