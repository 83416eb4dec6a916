"""The example project deployed: DEBUG off, under gunicorn, static files by WhiteNoise.

``manage.py collectstatic`` into a temporary STATIC_ROOT, then gunicorn on a free
loopback port (the fake NVML, two GPUs): the dashboard and ``api/docs/`` load in headless
Chromium with every stylesheet and script answered 200, their styles applied and their
scripts run. Full-page screenshots go to a temporary folder
(``GPU_MONITOR_DEPLOY_SCREENSHOTS=DIR`` keeps them) and are compared with the same page
whose static files are missing, which is what a deployment without WhiteNoise or
``collectstatic`` shows.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response, Route

from tests.e2e import ROOT

pytestmark = pytest.mark.e2e


class Deployed:
    """The example project under gunicorn with DEBUG off, after collectstatic."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.static_root = tmp / "static"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "FAKE_NVML_GPUS": "2",
            "FAKE_NVML_SCENARIO": "healthy",
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_STATIC_ROOT": str(self.static_root),
            "DJANGO_SQLITE_PATH": str(tmp / "db.sqlite3"),
        }
        for command in (["migrate"], ["collectstatic", "--noinput"]):
            subprocess.run(
                [sys.executable, "manage.py", *command, "--verbosity", "0"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        self.log_path = tmp / "gunicorn.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example_project.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                # Threads, as scripts/example runs it: a sync worker waits on each idle
                # connection a browser opens ahead of time.
                "--threads",
                "4",
            ],
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
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()}")

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    server = Deployed(tmp_path_factory.mktemp("deployed"))
    yield server
    server.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GPU_MONITOR_DEPLOY_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser: Browser, *, without_static: bool = False) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    if without_static:  # what a deployment that does not serve its static files shows
        page.route("**/static/**", lambda route: route.fulfill(status=404, body="Not Found"))
    return page


def static_answers(page: Page) -> list[Response]:
    """Collects the answer to every static file the page asks for (CSS, JS, images)."""
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if "/static/" in r.url else None)
    return answers


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def shoot(page: Page, path: Path) -> tuple[int, int]:
    page.screenshot(path=str(path), full_page=True)
    return png_size(path)


def dashboard_style(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """(() => {
            const style = (selector) => getComputedStyle(document.querySelector(selector));
            return {
                cards: style('#cards').display,
                body_margin: style('body').margin,
                card_border: style('.card').borderLeftWidth,
                card_radius: style('.card').borderTopLeftRadius,
                // unstyled, an SVG chart takes the page's whole width and more in height
                tallest_svg: Math.max(0, ...Array.from(
                    document.querySelectorAll('svg'), (e) => e.getBoundingClientRect().height)),
            };
        })()"""
    )


def test_dashboard_is_styled_and_live_under_gunicorn_with_debug_off(
    deployed: Deployed, browser: Browser, screenshots: Path
) -> None:
    page = open_page(browser)
    answers = static_answers(page)
    page.goto(f"{deployed.url}/api/gpu/dashboard/?interval=60")

    assert {r.url: r.status for r in answers} == {r.url: 200 for r in answers}
    assert sorted({Path(r.url).suffix for r in answers}) == [".css", ".js"]
    # dashboard.js ran and read the API
    page.wait_for_function(
        "document.getElementById('updated').textContent.startsWith('Updated')", timeout=20_000
    )
    style = dashboard_style(page)
    assert style["cards"] == "grid"
    assert style["body_margin"] == "0px"
    assert style["card_border"] != "0px"
    assert style["card_radius"] != "0px"
    assert 0 < style["tallest_svg"] < 150
    assert page.locator("#cards .card").count() == 2
    styled = shoot(page, screenshots / "dashboard-deployed.png")
    page.close()

    # The same page without its static files, as under gunicorn without WhiteNoise.
    bare = open_page(browser, without_static=True)
    bare.goto(f"{deployed.url}/api/gpu/dashboard/?interval=60")
    bare_style = dashboard_style(bare)
    assert bare_style["cards"] != "grid"
    assert bare_style["tallest_svg"] > 150
    unstyled = shoot(bare, screenshots / "dashboard-unstyled.png")
    bare.close()
    assert styled[0] == unstyled[0] == 1280
    assert styled[1] * 2 < unstyled[1], (styled, unstyled)  # giant unstyled SVG charts


def test_api_docs_are_styled_and_rendered_under_gunicorn_with_debug_off(
    deployed: Deployed, browser: Browser, screenshots: Path
) -> None:
    page = open_page(browser)
    answers = static_answers(page)
    page.goto(f"{deployed.url}/api/docs/")

    assert {r.url: r.status for r in answers} == {r.url: 200 for r in answers}
    # swagger-ui.css, swagger-ui-bundle.js, swagger-ui-standalone-preset.js
    assert {".css", ".js"} <= {Path(r.url).suffix for r in answers}
    assert len(answers) >= 3
    # Swagger UI's script draws every operation; its stylesheet colours each GET badge.
    page.locator(".opblock-get .opblock-summary-method").first.wait_for(timeout=10_000)
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("gpu_monitor example")
    badge = page.locator(".opblock-get .opblock-summary-method").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(97, 175, 254)"
    assert badge.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    styled = shoot(page, screenshots / "api-docs-deployed.png")
    page.close()

    bare = open_page(browser, without_static=True)
    bare.goto(f"{deployed.url}/api/docs/")
    bare.wait_for_load_state("load")
    assert bare.locator(".opblock").count() == 0  # nothing is drawn without the bundle
    unstyled = shoot(bare, screenshots / "api-docs-unstyled.png")
    bare.close()
    assert styled[1] > 2 * unstyled[1], (styled, unstyled)  # a blank page without its script


def requests_beyond(page: Page, origin: str) -> list[str]:
    """Collects (and aborts) every request of the page to another origin than ``origin``:
    an offline cluster cannot answer it."""
    seen: list[str] = []

    def refuse(route: Route) -> None:
        seen.append(route.request.url)
        route.abort()

    page.route(lambda url: url.startswith("http") and not url.startswith(f"{origin}/"), refuse)
    return seen


@pytest.mark.parametrize(
    ("path", "drawn"),
    [("/api/redoc/", "text=API docs by Redocly"), ("/api/docs/", ".opblock-get")],
)
def test_the_api_docs_ask_nothing_of_another_site(
    deployed: Deployed, browser: Browser, path: str, drawn: str
) -> None:
    """ReDoc's sidebar fetched its logo from cdn.redoc.ly: the example works offline."""
    page = open_page(browser)
    beyond = requests_beyond(page, deployed.url)
    page.goto(f"{deployed.url}{path}")
    page.locator(drawn).first.wait_for(timeout=10_000)
    page.wait_for_load_state("networkidle")

    assert beyond == []
    page.close()


def test_static_files_are_hashed_compressed_and_cached_for_ever(deployed: Deployed) -> None:
    """CompressedManifestStaticFilesStorage: a changed file gets a new name, so browsers
    may keep each one for ever; WhiteNoise answers gzip to a client that accepts it."""
    status, _, html = deployed.get("/api/gpu/dashboard/")
    assert status == 200
    hrefs = [part.split('"')[0] for part in html.decode().split('href="')[1:]]
    (css,) = [href for href in hrefs if href.startswith("/static/gpu_monitor/dashboard.")]
    name = Path(css).name
    assert name.startswith("dashboard.") and len(name.split(".")[1]) == 12, css

    status, headers, body = deployed.get(css, **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert "immutable" in headers["Cache-Control"]
    assert gzip.decompress(body) == (deployed.static_root / "gpu_monitor" / name).read_bytes()
    assert deployed.get("/static/gpu_monitor/not-there.css")[0] == 404


@pytest.mark.parametrize(("host", "status"), [("localhost", 200), ("evil.example", 400)])
def test_debug_off_answers_localhost_only(deployed: Deployed, host: str, status: int) -> None:
    assert deployed.get("/api/gpu/status", Host=f"{host}:{deployed.port}")[0] == status


def test_health_answers_anonymous_users_with_gpu_state(deployed: Deployed) -> None:
    """As the README's Health checks section says: the example's health/ is open."""
    status, _, body = deployed.get("/health/?format=json")
    assert status == 200
    ((label, result),) = json.loads(body).items()
    assert label.startswith("GPUHealthCheck(min_gpu_count=1")
    assert result == "OK"


def test_the_sites_root_leads_to_the_dashboard(deployed: Deployed) -> None:
    """The admin's "View site" and a browser at the printed address land on a page."""
    status, headers, body = deployed.get("/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'id="cards"' in body


def test_head_answers_leave_gunicorn_nothing_to_drop(deployed: Deployed) -> None:
    """A probe's HEAD gets the headers and no body: gunicorn logged "WSGI app sent body
    bytes on a no-body response" for each one when the app sent the GET's body."""
    for path in ("/api/gpu/status", "/api/gpu/dashboard/", "/api/gpu/devices"):
        request = urllib.request.Request(f"{deployed.url}{path}", method="HEAD")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
            assert int(response.headers["Content-Length"]) > 0  # what GET would send
    deployed.log.flush()
    assert "no-body response" not in deployed.log_path.read_text()


def test_favicon_ico_leads_to_the_app_s_icon(deployed: Deployed) -> None:
    """Pages that link no icon (the admin, health/, the API docs): no 404 in the log."""
    status, headers, body = deployed.get("/favicon.ico")  # urllib follows the redirect
    assert status == 200
    assert headers["Content-Type"].startswith("image/svg+xml")
    assert body.startswith(b"<svg")
