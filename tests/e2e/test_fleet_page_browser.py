"""The fleet page in a real headless Chromium with 1,000 recorded hosts.

The example server (fake NVML, its own SQLite) gets 1,000 host rows written straight
into its database (bulk_create: some stale, some down, some with problems) and one real
recorder; the page must show the counts, 1,000 tiles (down hosts and hosts with problems
first, in another order from the sort control), narrow them with the filter box,
grey a down host with "last seen", follow a change in the database without a reload and
open a host's page with its cards. The time to draw the 1,000 tiles (the page's scripts,
from the navigation timing) is printed, and a screenshot is saved
(``GPU_MONITOR_FLEET_SCREENSHOT=path.png`` to keep it).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e import ROOT, Server
from tests.e2e.conftest import NewPage, StartServer

pytestmark = pytest.mark.e2e
RACKS, PER_RACK = 40, 25  # 1,000 hosts: rack00-node00 ... rack39-node24
STALE = {f"rack{r:02}-node{n:02}" for r in range(0, RACKS, 4) for n in (3, 9, 17)}  # 30
DOWN = {f"rack{r:02}-node{n:02}" for r in range(1, RACKS, 2) for n in (5,)}  # 20
PROBLEMS = {f"rack{r:02}-node{n:02}" for r in range(0, RACKS, 5) for n in (11, 12)}  # 16
PROBLEMS |= {"rack01-node05"}  # a down host with a problem
RECORDED = "rack00-node01"  # recorded by a real gpu_record beside the server

# Run with the server's settings: 1,000 rows built from the fake NVML's 8 GPUs, each
# host with its own utilisation and temperatures, in one bulk_create.
SEED = """
import json, sys, time
import django
django.setup()
from gpu_monitor.fleet.writer import summary_columns
from gpu_monitor.stored import from_stored
from gpu_monitor.types import GPUDevice
from gpu_monitor.fleet.models import HostState
from gpu_monitor.params import moment
from gpu_monitor.manager import GPUManager
from gpu_monitor.serializers import GPUDeviceSerializer
spec = json.loads(sys.argv[1])
now = int(time.time())
base = [dict(GPUDeviceSerializer(d).data) for d in GPUManager().get_devices()]
rows = []
for i, host in enumerate(spec["hosts"]):
    devices = [
        {**d, "utilization_percent": (i * 37 + g * 23) % 101,
         "temperature_c": 30 + (i * 7 + g * 3) % 45 + (15 if host in spec["problems"] else 0),
         "used_memory_mb": d["total_memory_mb"] * ((i + g) % 10) // 10}
        for g, d in enumerate(base)
    ]
    if host in spec["problems"]:
        devices[3] = {**devices[3], "ecc_errors_uncorrected_volatile": 2}
    age, interval = (2, 60)  # up for three minutes
    if host in spec["stale"]:
        age, interval = (60, 10)
    if host in spec["down"]:
        age, interval = (900, 10)
    rows.append(HostState(host=host, epoch=now - age, timestamp=moment(now - age),
                          interval_seconds=interval, devices=devices, driver=None,
                          **summary_columns([from_stored(GPUDevice, d, mig_devices=[])
                                             for d in devices])))
HostState.objects.bulk_create(rows)
"""


@pytest.fixture
def fleet(start_server: StartServer) -> Iterator[Server]:
    server = start_server(scenario="healthy", gpus=8)
    recorder = None
    try:
        hosts = [f"rack{r:02}-node{n:02}" for r in range(RACKS) for n in range(PER_RACK)]
        spec = {
            "hosts": [h for h in hosts if h != RECORDED],
            "stale": sorted(STALE),
            "down": sorted(DOWN),
            "problems": sorted(PROBLEMS),
        }
        server.run(SEED, json.dumps(spec))
        recorder = subprocess.Popen(
            [sys.executable, "manage.py", "gpu_record", "--host", RECORDED, "--interval", "1"],
            cwd=ROOT,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):  # until the recorder's first tick
            if server.get("/api/gpu/hosts?page_size=1")["count"] == RACKS * PER_RACK:
                break
            time.sleep(0.1)
        yield server
    finally:
        if recorder is not None:
            recorder.terminate()
            recorder.wait(10)


@pytest.fixture
def page(new_page: NewPage) -> Page:
    return new_page(1400, 900)


# The navigation timing: the server's answer; the page's deferred scripts (page.js, then
# fleet.js drawing the tiles from the embedded data) run between the end of parsing and
# DOMContentLoaded.
TIMING = """new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  resolve({response: nav.responseEnd - nav.requestStart,
           render: nav.domContentLoadedEventStart - nav.domInteractive,
           ready: nav.domContentLoadedEventEnd});
})))"""


OVERFLOWING = """Array.from(document.querySelectorAll('#tiles .tile'))
    .filter((t) => t.scrollWidth > t.clientWidth + 1).map((t) => t.dataset.host)"""


def visible_tiles(page: Page) -> int:
    count: int = page.evaluate(
        "Array.from(document.querySelectorAll('#tiles .tile')).filter((t) => !t.hidden).length"
    )
    return count


def order(page: Page) -> list[str]:
    """The hosts of the tiles, in the page's order."""
    hosts: list[str] = page.evaluate(
        "Array.from(document.querySelectorAll('#tiles .tile')).map((t) => t.dataset.host)"
    )
    return hosts


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_thousand_hosts_on_the_fleet_page(fleet: Server, page: Page, tmp_path: Path) -> None:
    for load in ("first", "second"):  # the second: a warm server (templates, URLs)
        if load == "first":
            page.goto(f"{fleet.url}/api/gpu/fleet/?interval=1")
        else:
            page.reload()
        page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 1000")
        timing = page.evaluate(TIMING)
        print(
            f"\n1,000 tiles, {load} load: server {timing['response']:.0f} ms, drawing"
            f" {timing['render']:.0f} ms, ready {timing['ready']:.0f} ms after the"
            " navigation started"
        )
        assert timing["render"] < 2000

    # The counts at the top, and every tile.
    up = RACKS * PER_RACK - len(STALE) - len(DOWN)
    counts = {s: page.locator(f"#count-{s}").inner_text() for s in ("all", "up", "stale", "down")}
    assert counts == {"all": "1000", "up": str(up), "stale": "30", "down": "20"}
    assert page.locator("#count-problem").inner_text() == str(len(PROBLEMS))
    assert visible_tiles(page) == 1000
    assert page.locator("#shown").inner_text() == ""

    # Problems first by default: the down hosts, then those with a problem, then the stale
    # ones, then the rest, each by name: GET hosts?sort=problems' order over every page.
    rest = sorted(set(order(page)) - DOWN - PROBLEMS - STALE)
    problems_first = [*sorted(DOWN), *sorted(PROBLEMS - DOWN), *sorted(STALE), *rest]
    assert order(page) == problems_first
    assert page.locator("#sort").input_value() == "problems"
    assert "sort=" not in page.url  # the page's default

    # The sort control asks the server for another order at once, keeps it in the address
    # (a reload keeps it), and back.
    for sort, first in (("host", "rack00-node00"), ("last_seen", sorted(DOWN)[0])):
        started = time.monotonic()
        page.select_option("#sort", sort)
        page.wait_for_function(f"document.querySelector('#tiles .tile').dataset.host === {first!r}")
        print(f"sort {sort}: 1,000 tiles reordered in {time.monotonic() - started:.2f} s")
        assert page.url.endswith(f"?interval=1&sort={sort}")
    page.reload()
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 1000")
    assert page.locator("#sort").input_value() == "last_seen"
    assert order(page)[: len(DOWN)] == sorted(DOWN)  # the longest silent first
    assert order(page)[len(DOWN) : len(DOWN) + len(STALE)] == sorted(STALE)
    page.select_option("#sort", "host")
    page.wait_for_function(
        "document.querySelector('#tiles .tile').dataset.host === 'rack00-node00'"
    )
    assert order(page) == sorted(order(page))
    page.select_option("#sort", "problems")
    page.wait_for_function(
        f"document.querySelector('#tiles .tile').dataset.host === {problems_first[0]!r}"
    )
    assert order(page) == problems_first
    assert page.url.endswith("?interval=1")

    # A down host: greyed, with when it was last seen; a host with a problem says it in red.
    down = page.locator('.tile[data-host="rack03-node05"]')
    assert down.get_attribute("data-state") == "down"
    assert down.locator(".flag").inner_text() == "DOWN"  # text-transform: the text is "down"
    assert down.locator(".status").inner_text() == "last seen 15 min ago"
    assert down.evaluate("(t) => getComputedStyle(t.querySelector('.strip')).filter") == (
        "grayscale(1)"
    )
    up_tile = page.locator('.tile[data-host="rack02-node00"]')
    assert up_tile.locator(".status").is_hidden()
    assert up_tile.evaluate("(t) => getComputedStyle(t.querySelector('.strip')).filter") == "none"
    problem = page.locator('.tile[data-host="rack05-node11"]')
    assert problem.locator(".status").inner_text() == "GPU 3: 2 uncorrected ECC error(s)"
    red = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--bad')")
    color = problem.locator(".status").evaluate("(e) => getComputedStyle(e).color")
    assert color == page.evaluate(
        """(red) => { const probe = document.createElement('span'); probe.style.color = red;
                     document.body.append(probe); const c = getComputedStyle(probe).color;
                     probe.remove(); return c; }""",
        red.strip(),
    )
    assert problem.locator(".strip span").nth(3).get_attribute("class") == " bad"
    assert problem.locator(".strip span").count() == 8

    # No tile's text runs out of its tile (names and numbers are cut with an ellipsis).
    assert page.evaluate(OVERFLOWING) == []

    page.wait_for_timeout(600)
    screenshot = Path(os.environ.get("GPU_MONITOR_FLEET_SCREENSHOT", tmp_path / "fleet.png"))
    page.screenshot(path=str(screenshot))
    assert png_size(screenshot) == (1400, 900)
    assert screenshot.stat().st_size > 50_000  # a page of tiles, not a blank one
    page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-full.png")), full_page=True)

    # Dark mode follows the browser; on a phone the tiles stay whole, two a row.
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-dark.png")))
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    columns = page.evaluate(
        """new Set(Array.from(document.querySelectorAll('#tiles .tile')).slice(0, 6)
               .map((t) => t.getBoundingClientRect().left)).size"""
    )
    assert columns == 2
    assert page.evaluate(OVERFLOWING) == []
    page.set_viewport_size({"width": 1400, "height": 900})

    # The filter box narrows the tiles (and keeps the filter in the address), the state
    # buttons too.
    page.locator("#filter").fill("rack07-")
    assert visible_tiles(page) == PER_RACK
    assert page.locator("#shown").inner_text() == f"{PER_RACK} of 1000 shown"
    assert page.url.endswith("?interval=1&q=rack07-")
    page.locator("#filter").fill("RACK03-NODE05")
    assert visible_tiles(page) == 1
    page.locator("#filter").fill("")
    page.locator('[data-show="down"]').click()
    assert visible_tiles(page) == len(DOWN)
    page.locator('[data-show="problem"]').click()
    assert visible_tiles(page) == len(PROBLEMS)
    page.locator('[data-show="all"]').click()
    assert visible_tiles(page) == 1000
    page.goto(f"{fleet.url}/api/gpu/fleet/?interval=1&q=RACK07-")  # ?q= fills the box
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 1000")
    assert page.locator("#filter").input_value() == "RACK07-"
    assert visible_tiles(page) == PER_RACK
    page.locator("#filter").fill("")

    # The page refreshes in place: a host goes down in the database, its tile follows.
    page.evaluate("window.notReloaded = true")
    fleet.run(
        "import django, time; django.setup();"
        "from gpu_monitor.fleet.models import HostState;"
        "HostState.objects.filter(host='rack02-node00').update(epoch=int(time.time()) - 720)",
    )
    page.wait_for_function(
        """document.querySelector('.tile[data-host="rack02-node00"]').dataset.state === 'down'"""
    )
    assert up_tile.locator(".status").inner_text() == "last seen 12 min ago"
    assert page.locator("#count-down").inner_text() == "21"
    assert page.evaluate("window.notReloaded") is True

    # A click opens the host's page: the dashboard's cards for that host.
    page.locator("#filter").fill("rack00-node01")
    page.locator(f'.tile[data-host="{RECORDED}"]').click()
    page.wait_for_url(f"**/api/gpu/fleet/{RECORDED}")
    assert page.locator("#host-name").inner_text() == RECORDED
    assert page.locator("#cards .card").count() == 8
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")
    assert page.locator("#host-state").inner_text() == "up"
    assert page.locator("#host-seen").inner_text().endswith(" s ago")
    assert page.locator('.card[data-index="0"] [data-field="temperature"]').inner_text() == (
        "34 °C"
    )
    page.wait_for_function(
        """(() => {
            const line = document.querySelector(
                '.card[data-index="0"] [data-chart="temperature"] .line');
            return line && line.getAttribute('d').startsWith('M');
        })()""",
        timeout=30_000,
    )
    host_shot = screenshot.with_name(screenshot.stem + "-host.png")
    page.screenshot(path=str(host_shot))
    assert png_size(host_shot) == (1400, 900)

    # A down host's page: its last cards, greyed, and when it was last seen.
    page.goto(f"{fleet.url}/api/gpu/fleet/rack01-node05/?interval=60")
    assert page.locator("#host-state").inner_text() == "down"
    assert page.locator("#host-seen").inner_text() == "15 min ago"
    assert page.locator("#cards .card").count() == 8
    assert page.locator("#cards").evaluate("(e) => getComputedStyle(e).opacity") == "0.6"
    ecc = page.locator('.card[data-index="3"] .badge[data-kind="uncorrected_ecc"]')
    assert ecc.inner_text() == "ECC 2"


LONG_HOST = "n" * 255  # the longest host name the fleet takes
PAGE_OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
SUPERUSER = (
    "import django; django.setup();"
    "from django.contrib.auth.models import User;"
    "User.objects.create_superuser('root', 'root@example.com', 'not-secret')"
)


def nav_current(page: Page) -> str:
    return page.locator('nav.pages a[aria-current="page"]').inner_text()


def test_the_nav_links_the_pages_and_a_long_host_name_wraps(
    start_server: StartServer, page: Page, tmp_path: Path
) -> None:
    server = start_server(scenario="healthy", gpus=2)
    spec = {"hosts": [LONG_HOST, "node-a"], "stale": [], "down": [], "problems": []}
    server.run(SEED, json.dumps(spec))
    server.run(SUPERUSER)

    # Dashboard -> Fleet by the nav in each page's header; no link to the usage page,
    # which an anonymous viewer may not open (PROCESS_PERMISSION_CLASSES).
    page.goto(f"{server.url}/api/gpu/dashboard/")
    assert page.locator("nav.pages a").all_inner_texts() == ["Dashboard", "Fleet"]
    assert nav_current(page) == "Dashboard"
    page.locator("nav.pages a", has_text="Fleet").click()
    page.wait_for_url("**/api/gpu/fleet")
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 2")
    assert nav_current(page) == "Fleet"
    page.goto(f"{server.url}/api/gpu/usage")

    # Anonymous: the 403 page offers to sign in, and comes back to the page after.
    assert page.locator("#error-detail").inner_text().startswith("Authentication")
    assert page.locator("nav.pages a").all_inner_texts() == ["Dashboard", "Fleet"]
    page.locator("#sign-in").click()
    page.locator("#id_username").fill("root")
    page.locator("#id_password").fill("not-secret")
    page.locator("#id_password").press("Enter")
    page.locator("h1", has_text="GPU usage").wait_for()
    assert page.url == f"{server.url}/api/gpu/usage"
    assert page.locator("nav.pages a").all_inner_texts() == ["Dashboard", "Fleet", "Usage"]
    assert nav_current(page) == "Usage"

    # A host of 255 characters: its page wraps the name, on a wall and on a phone.
    page.goto(f"{server.url}/api/gpu/fleet/{LONG_HOST}/")
    assert page.locator("#host-name").inner_text() == LONG_HOST
    assert page.locator('nav.pages a[aria-current="true"]').inner_text() == "Fleet"
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(PAGE_OVERFLOW) == 0, width
    page.set_viewport_size({"width": 1400, "height": 900})
    page.screenshot(path=str(tmp_path / "long-host.png"))

    # An unknown host: the 404 page leads back to the fleet.
    page.goto(f"{server.url}/api/gpu/fleet/nobody/")
    page.locator("#back").click()
    page.wait_for_url("**/api/gpu/fleet")


EVENTS = """
import sys, time, django
django.setup()
from gpu_monitor.history.models import Event
from gpu_monitor.params import moment
now = int(time.time())
for age, kind in ((600, "nvml_unavailable"), (300, "nvml_available"), (200, "gpu_lost"),
                  (100, "nvml_unavailable")):
    message = "NVML Shared Library Not Found" if kind == "nvml_unavailable" else ""
    Event.objects.create(host="node-a", epoch=now - age, timestamp=moment(now - age),
                         kind=kind, message=message)
"""


def test_a_host_header_shows_an_ended_nvml_outage_but_not_in_red(
    start_server: StartServer, page: Page
) -> None:
    server = start_server(scenario="healthy", gpus=2)
    server.run(SEED, json.dumps({"hosts": ["node-a"], "stale": [], "down": [], "problems": []}))
    server.run(EVENTS)

    page.goto(f"{server.url}/api/gpu/fleet/node-a/")
    page.wait_for_function("document.querySelectorAll('#host-events li').length === 4")

    items = page.locator("#host-events li")
    kinds = [text.split(" ", 3)[-1].split(":")[0] for text in items.all_inner_texts()]
    red = [items.nth(i).get_attribute("class") == "bad" for i in range(4)]
    assert kinds == ["nvml unavailable", "gpu lost", "nvml available", "nvml unavailable"]
    assert red == [True, True, False, False]  # the oldest outage ended: listed, not red


# Colours as the browser computes them: var(--bad) of the page, a tile's edge, a text.
RED = """() => { const probe = document.createElement('span');
  probe.style.color = getComputedStyle(document.documentElement).getPropertyValue('--bad');
  document.body.append(probe); const c = getComputedStyle(probe).color;
  probe.remove(); return c; }"""


def test_a_stale_or_down_host_with_a_problem_keeps_it_red(
    start_server: StartServer, page: Page
) -> None:
    server = start_server(scenario="healthy", gpus=8)
    spec = {
        "hosts": ["node-stale", "node-down", "node-gone"],
        "stale": ["node-stale"],
        "down": ["node-down", "node-gone"],
        "problems": ["node-stale", "node-down"],
    }
    server.run(SEED, json.dumps(spec))
    page.goto(f"{server.url}/api/gpu/fleet/")
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 3")
    red = page.evaluate(RED)

    seen_at = {"node-stale": "last seen 1 min ago", "node-down": "last seen 15 min ago"}
    for host, seen in seen_at.items():
        tile = page.locator(f'.tile[data-host="{host}"]')
        assert tile.get_attribute("data-problem") == "1"
        # The red edge, the first problem in red, and under it when it was last seen.
        assert tile.evaluate("(t) => getComputedStyle(t).borderLeftColor") == red, host
        status = tile.locator(".status")
        assert status.inner_text() == "GPU 3: 2 uncorrected ECC error(s)"
        assert status.evaluate("(e) => getComputedStyle(e).color") == red, host
        assert tile.locator(".seen").inner_text() == seen
        assert tile.locator(".seen").evaluate("(e) => getComputedStyle(e).color") != red
        # The GPU with the problem keeps its red outline; the other GPUs are greyed.
        cells = tile.locator(".strip span")
        assert cells.nth(3).evaluate("(e) => getComputedStyle(e).boxShadow").startswith(red)
        assert tile.evaluate("(t) => getComputedStyle(t.querySelector('.strip')).filter") == "none"
        assert cells.nth(3).evaluate("(e) => getComputedStyle(e).filter") == "none"
        assert cells.nth(0).evaluate("(e) => getComputedStyle(e).filter") == "grayscale(1)"
        assert tile.locator(".host").evaluate("(e) => getComputedStyle(e).color") != red

    # A down host without a problem: grey all over, "last seen" its last line.
    gone = page.locator('.tile[data-host="node-gone"]')
    assert gone.evaluate("(t) => getComputedStyle(t).borderLeftColor") != red
    assert gone.locator(".status").inner_text() == "last seen 15 min ago"
    assert gone.locator(".seen").is_hidden()
    assert gone.evaluate("(t) => getComputedStyle(t.querySelector('.strip')).filter") == (
        "grayscale(1)"
    )
    assert page.evaluate(OVERFLOWING) == []
    page.locator('[data-show="problem"]').click()
    assert visible_tiles(page) == 2
