"""The usage page in a real headless Chromium (Debian's package, driven by Playwright).

The example server (process permissions opened, tests/e2e/settings_open_processes.py)
with usage rows and holds written through the usage models: the bars and the table show
the API's numbers, the window buttons switch between 7, 30 and 90 days, the idle-held
list is on top, a user name made of HTML shows as text, and the page fits a phone. With
160 users and 25 idle GPUs (the issue's trial): the first 20 rows and "show all", the
filter, sorting by a header and back, the table within its panel at 1280 to 1920 px in
light and dark, a phone's blocks, and a refresh that keeps the filter, sort and "show all".
Each idle GPU says whether its holder was told ("notified 2x, last 1 h ago"), and nothing
of it without gpu_monitor.notify.
Screenshots at 1400 and 390 px are saved (``GPU_MONITOR_SCREENSHOT_DIR=dir`` keeps them).
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e import Server
from tests.e2e.conftest import NewPage, StartServer

pytestmark = pytest.mark.e2e
ODD = '<img src=x onerror="window.pwned=1">Zoë 山田'
LONG = "a-very-long-user-name-" * 6
# user: (days ago, GPU-hours, idle GPU-hours) of each of their rows
USAGE = {
    "alice": [(1, 10, 2), (20, 30, 0)],
    ODD: [(2, 5, 1)],
    "bob": [(3, 3, 3)],
    LONG: [(1, 1, 0.5)],
    "carol": [(60, 50, 10)],
}
WRITE = """
import json, sys, time
from gpu_monitor.usage.models import Hold, Usage
usage, odd = json.loads(sys.argv[1]), sys.argv[2]
now = int(time.time())
for user, rows in usage.items():
    for days, hours, idle in rows:
        period = (now - days * 86400) // 300 * 300
        held = int(hours * 3600)
        Usage.objects.create(
            host="node-1", gpu_uuid="GPU-00000000", gpu_index=0, user=user, period=period,
            seconds_held=held, idle_seconds=int(idle * 3600), shared_seconds=0,
            utilization_sum=40 * held, utilization_seconds=held, max_memory_mb=20480,
            memory_mib_seconds=20480 * held, first_epoch=period + 10, last_epoch=period + 300,
        )
for host, gpu, user, minutes in (("node-1", 2, odd, 180), ("node-2", 0, "bob", 75)):
    Hold.objects.create(
        host=host, gpu_uuid=f"GPU-0000000{gpu}", gpu_index=gpu, user=user,
        held_since=now - 86400, idle_since=now - minutes * 60, last_epoch=now,
        interval_seconds=3600, memory_mb=40960,
    )
"""


@pytest.fixture
def server(start_server: StartServer) -> Server:
    running = start_server(scenario="healthy", settings="tests.e2e.settings_open_processes")
    setup = "import django; django.setup(); exec(open(0).read())"
    running.run(setup, json.dumps(USAGE), ODD, stdin=WRITE)
    return running


@pytest.fixture
def page(new_page: NewPage) -> Page:
    return new_page(1400, 900)


def api(server: Server, path: str) -> Any:
    request = urllib.request.Request(server.url + path, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def shown_rows(page: Page) -> list[list[str]]:
    cells = "tr => [...tr.children].map(cell => cell.textContent)"
    return page.locator("#rows tr").evaluate_all(f"rows => rows.map({cells})")


def test_bars_table_windows_and_idle_list_follow_the_api(
    server: Server, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/api/gpu/usage/")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")

    week = api(server, "/api/gpu/usage?since=-7d")
    users = [row["user"] for row in week["rows"]]
    assert users == ["alice", ODD, "bob", LONG]
    bars = page.locator("#bars li")
    assert bars.count() == 4
    assert [bars.nth(i).locator(".who").text_content() for i in range(4)] == users
    most = week["rows"][0]["gpu_hours"]
    for i, row in enumerate(week["rows"]):
        for part, hours in (("active", row["active_gpu_hours"]), ("idle", row["idle_gpu_hours"])):
            width = bars.nth(i).locator(f".{part}").evaluate("e => parseFloat(e.style.width)")
            assert width == pytest.approx(100 * hours / most, abs=0.01), (row["user"], part)
    assert bars.nth(2).locator(".numbers").text_content() == "3.00 h · 3.00 idle"

    table = shown_rows(page)
    assert [cells[0] for cells in table] == users
    assert table[0][1:5] == ["10.00", "2.00", "8.00", "0.00"]
    assert table[0][5:8] == ["40%", "20480 MiB", "200.00"]
    assert page.locator("#total th").first.text_content() == "Total"
    total = f"Total{week['total']['gpu_hours']:.2f}"
    assert (page.locator("#total").text_content() or "").startswith(total)

    # The idle-held list, on top of the page: the GPUs, their users, since when.
    idle = page.locator("#idle li")
    assert idle.count() == 2
    assert [idle.nth(i).locator(".user").text_content() for i in range(2)] == [ODD, "bob"]
    assert idle.nth(0).locator(".gpu").text_content() == "GPU 2 · node-1"
    assert idle.nth(0).locator(".since").text_content().endswith("(3 h 00 min)")
    assert idle.nth(1).locator(".memory").text_content() == "40960 MiB"
    assert "alert" in (page.locator("#idle-panel").get_attribute("class") or "")
    top = page.locator(".idle-held").bounding_box()
    chart = page.locator("#bars").bounding_box()
    assert top and chart and top["y"] < chart["y"]

    # A user name made of HTML is text: no element made of it, no script run.
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None

    # The name column ends before the bars: a long name is cut with an ellipsis.
    long_name = bars.nth(3).locator(".who").bounding_box()
    long_bar = bars.nth(3).locator(".stack").bounding_box()
    assert long_name and long_bar and long_name["x"] + long_name["width"] <= long_bar["x"]

    # At 1400 px the whole table fits its panel (no sideways scrolling).
    assert page.evaluate(
        "(e => e.scrollWidth <= e.clientWidth)(document.querySelector('.table-scroll'))"
    )
    assert page.locator("#rows th").nth(3).get_attribute("title") == LONG

    shots = Path(os.environ.get("GPU_MONITOR_SCREENSHOT_DIR", tmp_path))
    page.wait_for_timeout(600)  # let the bars finish their 0.4 s transition
    page.screenshot(path=str(shots / "usage-1400.png"), full_page=True)

    # 30 days: alice's older row counts; 90 days: carol appears.
    page.locator('[data-window="-30d"]').click()
    page.wait_for_function(
        "document.querySelector('#rows th').textContent === 'alice' && "
        "document.querySelector('#rows td').textContent === '40.00'"
    )
    assert page.locator('[data-window="-30d"]').get_attribute("aria-pressed") == "true"
    assert page.locator('[data-window="-7d"]').get_attribute("aria-pressed") == "false"
    page.locator('[data-window="-90d"]').click()
    page.wait_for_function("document.querySelectorAll('#bars li').length === 5")
    assert shown_rows(page)[0][0] == "carol"
    assert [cells[0] for cells in shown_rows(page)] == [
        row["user"] for row in api(server, "/api/gpu/usage?since=-90d")["rows"]
    ]

    # A phone: nothing wider than the screen (each user a block of labelled values).
    page.locator('[data-window="-7d"]').click()
    page.wait_for_function("document.querySelectorAll('#bars li').length === 4")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(600)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    name = bars.nth(0).locator(".who").bounding_box()
    bar = bars.nth(0).locator(".stack").bounding_box()
    assert name and bar and name["y"] + name["height"] <= bar["y"] + 1  # the name above
    page.screenshot(path=str(shots / "usage-390.png"), full_page=True)
    assert (shots / "usage-390.png").read_bytes().startswith(b"\x89PNG")

    # The API goes away: the page says so and keeps what it showed.
    server.stop()
    page.locator('[data-window="-30d"]').click()
    page.wait_for_selector("#api-error:not([hidden])", timeout=10_000)
    assert page.locator("#api-error").text_content().startswith("Cannot read GPU usage (")
    assert shown_rows(page)[0][0] == "alice"


NOTICES = """
import sys, time
from gpu_monitor.notify.models import Notice
from gpu_monitor.usage.models import Hold
now, odd = int(time.time()), sys.argv[1]
held = Hold.objects.get(user=odd)
for step, channel, ago in ((0, "email", 9000), (0, "webhook", 9000), (1, "email", 3700)):
    Notice.objects.create(
        host=held.host, gpu_uuid=held.gpu_uuid, gpu_index=held.gpu_index, user=odd,
        idle_since=held.idle_since, step=step, channel=channel, status="sent",
        created=now - ago, sent=now - ago,
    )
"""


def test_each_idle_gpu_says_whether_its_holder_was_told(
    server: Server, page: Page, tmp_path: Path
) -> None:
    server.run("import django; django.setup(); exec(open(0).read())", ODD, stdin=NOTICES)
    page.goto(f"{server.url}/api/gpu/usage/")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")

    told = api(server, "/api/gpu/usage/idle")["gpus"][0]["notified"]
    odd, bob = page.locator("#idle li").nth(0), page.locator("#idle li").nth(1)
    assert odd.locator(".notified").text_content() == "notified 2x, last 1 h ago"
    title = odd.locator(".notified").get_attribute("title") or ""
    assert len(title) == len("2026-11-28 14:05")  # the local time of told["last"]
    shown_last = page.evaluate(
        "iso => { const d = new Date(iso); return [d.getHours(), d.getMinutes()]; }",
        told["last"],
    )
    assert title.endswith(f"{shown_last[0]:02d}:{shown_last[1]:02d}")
    assert bob.locator(".notified").text_content() == "not notified"
    shots = Path(os.environ.get("GPU_MONITOR_SCREENSHOT_DIR", tmp_path))
    page.locator("#idle-panel").screenshot(path=str(shots / "usage-notified.png"))


def test_without_the_notify_app_the_idle_list_says_nothing_of_notices(
    start_server: StartServer, page: Page
) -> None:
    running = start_server(scenario="healthy", settings="tests.usage.settings_page_without_notify")
    setup = "import django; django.setup(); exec(open(0).read())"
    running.run(setup, json.dumps(USAGE), ODD, stdin=WRITE)
    page.goto(f"{running.url}/api/gpu/usage/")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")

    assert [g["notified"] for g in api(running, "/api/gpu/usage/idle")["gpus"]] == [None, None]
    assert page.locator("#idle li").count() == 2
    assert page.locator("#idle .notified").count() == 0


def test_without_usage_the_page_says_so(
    start_server: StartServer, page: Page, tmp_path: Path
) -> None:
    empty = start_server(scenario="healthy", settings="tests.e2e.settings_open_processes")
    page.goto(f"{empty.url}/api/gpu/usage/")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")
    assert page.locator("#bars-none").is_visible()
    assert page.locator("#bars-none").text_content() == "No GPU was held in this window."
    assert page.locator("#idle-none").is_visible()
    assert page.locator("#table-panel").is_hidden()
    assert "alert" not in (page.locator("#idle-panel").get_attribute("class") or "")
    assert page.locator("#api-error").is_hidden()
    page.emulate_media(color_scheme="dark")
    shots = Path(os.environ.get("GPU_MONITOR_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(shots / "usage-empty-dark.png"), full_page=True)


def test_a_program_at_the_same_url_gets_json(server: Server) -> None:
    body = api(server, "/api/gpu/usage/?since=-90d&by=host")

    assert body["by"] == "host"
    assert [row["host"] for row in body["rows"]] == ["node-1"]
    assert server.get("/api/gpu/usage/")["rows"][0]["user"] == "alice"  # no Accept header


# The trial: 160 users (some with long names, GPU-hours in the thousands) and 25
# GPUs held idle, on a page that shows the first 20 of each until asked for all.
CROWD = 160
IDLE_HELD = 25
TOP = 20
CROWD_WRITE = """
import sys, time
from gpu_monitor.usage.models import Hold, Usage
users, holds = int(sys.argv[1]), int(sys.argv[2])
now = int(time.time())
rows = []
for i in range(users):
    user = f"visiting-researcher-{i:03d}" if i % 8 == 0 else f"user-{i:03d}"
    period = (now - (i % 5 + 1) * 86400) // 300 * 300
    held = (users - i) * 36000 + 900  # user-000 the most: 1600.25 GPU-hours
    rows.append(Usage(
        host=f"node-{i % 40}", gpu_uuid=f"GPU-{i:08d}", gpu_index=i % 8, user=user,
        period=period, seconds_held=held, idle_seconds=held // (i % 3 + 2),
        shared_seconds=held // 7, utilization_sum=(i % 97) * held, utilization_seconds=held,
        max_memory_mb=81559 - i, memory_mib_seconds=81559 * held, first_epoch=period + 10,
        last_epoch=period + 300 - i,
    ))
Usage.objects.bulk_create(rows)
for i in range(holds):
    Hold.objects.create(
        host=f"node-{i:02d}", gpu_uuid=f"GPU-9{i:07d}", gpu_index=0, user=f"user-{i:03d}",
        held_since=now - 86400, idle_since=now - 7200, last_epoch=now,
        interval_seconds=3600, memory_mb=40960,
    )
"""
ONE_MORE = """
import time
from gpu_monitor.usage.models import Usage
now = int(time.time())
Usage.objects.create(
    host="node-new", gpu_uuid="GPU-NEW", gpu_index=0, user="user-0100-new",
    period=now // 300 * 300 - 300, seconds_held=3600, idle_seconds=0, shared_seconds=0,
    utilization_sum=0, utilization_seconds=3600, max_memory_mb=1, memory_mib_seconds=3600,
    first_epoch=now - 600, last_epoch=now - 300,
)
"""
SETUP = "import django; django.setup(); exec(open(0).read())"
LOADED = "document.getElementById('updated').textContent.startsWith('Updated')"
FITS = "(e => e.scrollWidth <= e.clientWidth)(document.querySelector('{}'))"


@pytest.fixture
def crowd(start_server: StartServer) -> Server:
    running = start_server(scenario="healthy", settings="tests.e2e.settings_open_processes")
    running.run(SETUP, str(CROWD), str(IDLE_HELD), stdin=CROWD_WRITE)
    return running


def open_crowd(page: Page, crowd: Server) -> None:
    page.goto(f"{crowd.url}/api/gpu/usage/")
    page.wait_for_function(LOADED)


def first_column(page: Page) -> list[str]:
    return [cells[0] for cells in shown_rows(page)]


def test_many_users_show_the_top_rows_until_show_all(crowd: Server, page: Page) -> None:
    open_crowd(page, crowd)
    users = [row["user"] for row in api(crowd, "/api/gpu/usage?since=-7d")["rows"]]
    assert len(users) == CROWD

    # The first 20 by GPU-hours in the table and the bars; the rest behind a button.
    assert first_column(page) == users[:TOP]
    assert page.locator("#bars li").count() == TOP
    assert page.locator("#bars-more").is_visible()
    more = page.locator("#show-all")
    assert more.text_content() == f"Show all ({CROWD})"
    assert more.get_attribute("aria-pressed") == "false"
    assert page.locator("#shown").text_content() == f"{TOP} of {CROWD} users"
    assert page.locator("#total th").first.text_content() == "Total"

    more.focus()
    page.keyboard.press("Enter")  # a button: the keyboard works
    assert first_column(page) == users
    assert more.get_attribute("aria-pressed") == "true"
    assert more.text_content() == f"Show the first {TOP}"
    more.click()
    assert first_column(page) == users[:TOP]

    # The GPUs held idle: the first 20, then all of them.
    assert page.locator("#idle li").count() == TOP
    page.locator("#idle-all").click()
    assert page.locator("#idle li").count() == IDLE_HELD
    assert page.locator("#idle-all").get_attribute("aria-pressed") == "true"


def test_the_filter_narrows_the_rows_as_one_types(crowd: Server, page: Page) -> None:
    open_crowd(page, crowd)
    page.locator("#filter").press_sequentially("user-01")
    assert first_column(page) == [f"user-{i:03d}" for i in range(10, 20) if i % 8]
    assert page.locator("#shown").text_content() == f"9 of 9 users ({CROWD} in all)"
    assert page.locator("#show-all").is_hidden()  # nine rows: nothing more to show

    page.locator("#filter").fill("RESEARCHER")  # any case
    assert first_column(page) == [f"visiting-researcher-{i:03d}" for i in range(0, 160, 8)]
    page.locator("#filter").fill("nobody")
    assert shown_rows(page) == []
    assert page.locator("#rows-none").is_visible()
    page.locator("#filter").fill("")
    assert len(shown_rows(page)) == TOP


def test_a_header_sorts_its_column_and_again_reverses_it(crowd: Server, page: Page) -> None:
    open_crowd(page, crowd)
    rows = api(crowd, "/api/gpu/usage?since=-7d")["rows"]
    hours = page.locator('th[data-key="gpu_hours"]')
    assert hours.get_attribute("aria-sort") == "descending"  # the API's order

    hours.locator("button").click()  # numbers as numbers: 23.31 before 123.31
    assert hours.get_attribute("aria-sort") == "ascending"
    assert first_column(page) == [row["user"] for row in reversed(rows)][:TOP]
    assert [float(cells[1]) for cells in shown_rows(page)] == sorted(
        row["gpu_hours"] for row in rows
    )[:TOP]
    hours.locator("button").click()
    assert hours.get_attribute("aria-sort") == "descending"
    assert first_column(page) == [row["user"] for row in rows][:TOP]

    user = page.locator('th[data-key="user"]')
    user.locator("button").click()
    assert user.get_attribute("aria-sort") == "ascending"
    assert hours.get_attribute("aria-sort") is None
    assert first_column(page) == sorted(row["user"] for row in rows)[:TOP]
    user.locator("button").press("Enter")
    assert user.get_attribute("aria-sort") == "descending"
    assert first_column(page) == sorted((row["user"] for row in rows), reverse=True)[:TOP]

    # Times by time, the newest first; the cell says how long ago, its title when.
    seen = page.locator('th[data-key="last_seen"]')
    seen.locator("button").click()
    assert seen.get_attribute("aria-sort") == "descending"
    newest = sorted(rows, key=lambda row: row["last_seen"], reverse=True)
    assert first_column(page) == [row["user"] for row in newest][:TOP]
    cell = page.locator("#rows tr").first.locator("td").last
    assert (cell.text_content() or "").endswith(" ago")
    assert len(cell.get_attribute("title") or "") == len("2026-11-28 14:05")


@pytest.mark.parametrize("width", [1280, 1400, 1920])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_table_fits_its_panel(
    crowd: Server, new_page: NewPage, width: int, scheme: str, tmp_path: Path
) -> None:
    page = new_page(width, 900, color_scheme=scheme)
    open_crowd(page, crowd)
    assert len(shown_rows(page)) >= TOP  # the longest names and numbers are among the first
    assert page.evaluate(FITS.format(".table-scroll")), "the table scrolls sideways"
    assert page.evaluate(FITS.format("#table-panel"))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    seen = page.locator("#table thead th").last.bounding_box()  # "Last seen" whole
    panel = page.locator("#table-panel").bounding_box()
    assert seen and panel and seen["x"] + seen["width"] <= panel["x"] + panel["width"]
    if width == 1280:
        shots = Path(os.environ.get("GPU_MONITOR_SCREENSHOT_DIR", tmp_path))
        page.screenshot(path=str(shots / f"usage-crowd-1280-{scheme}.png"), full_page=True)


def test_a_phone_reads_each_user_as_a_block(
    crowd: Server, new_page: NewPage, tmp_path: Path
) -> None:
    page = new_page(390, 844)
    open_crowd(page, crowd)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(FITS.format(".table-scroll"))
    first = page.locator("#rows tr").first
    assert first.locator("td").first.evaluate("e => getComputedStyle(e, '::before').content") == (
        '"GPU-hours"'
    )
    name = first.locator("th").bounding_box()
    value = first.locator("td").first.bounding_box()
    assert name and value and name["y"] + name["height"] <= value["y"] + 1  # the name on top
    page.locator('th[data-key="user"] button').click()  # the headers: sort buttons
    assert page.locator('th[data-key="user"]').get_attribute("aria-sort") == "ascending"
    shots = Path(os.environ.get("GPU_MONITOR_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(shots / "usage-crowd-390.png"), full_page=True)


def test_a_refresh_keeps_the_filter_the_sort_and_show_all(crowd: Server, page: Page) -> None:
    page.clock.install()
    open_crowd(page, crowd)
    page.locator("#filter").fill("user-0")
    page.locator('th[data-key="user"] button').click()
    page.locator("#show-all").click()
    before = first_column(page)
    assert len(before) > TOP and before == sorted(before)

    crowd.run(SETUP, stdin=ONE_MORE)
    page.clock.run_for(61_000)  # the page refreshes every 60 s
    page.wait_for_function("document.getElementById('shown').textContent.includes('161 in all')")
    after = first_column(page)
    assert "user-0100-new" in after
    assert [user for user in after if user != "user-0100-new"] == before
    assert page.locator("#filter").input_value() == "user-0"
    assert page.locator('th[data-key="user"]').get_attribute("aria-sort") == "ascending"
    assert page.locator("#show-all").get_attribute("aria-pressed") == "true"


# Each value cell of a row on a phone: its ::before label, and whether its value starts on
# the cell's first line (beside the label, not wrapped under it) on one line.
PHONE_CELLS = """(row) => [...row.children].slice(1).map((cell) => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  const lines = [...range.getClientRects()].filter((r) => r.width > 0);
  const text = lines[lines.length - 1];
  return {label: getComputedStyle(cell, '::before').content, want: cell.dataset.label,
          value: cell.textContent, lines: new Set(lines.map((r) => Math.round(r.top))).size,
          top: Math.round(text.top - cell.getBoundingClientRect().top)};
})"""


def test_a_phone_labels_the_total_and_keeps_each_value_on_one_line(
    crowd: Server, new_page: NewPage, tmp_path: Path
) -> None:
    page = new_page(390, 844)
    open_crowd(page, crowd)
    total = page.locator("#total tr")
    assert total.locator("th").first.inner_text() == "Total"
    rows = [total, *page.locator("#rows tr").all()[:TOP]]
    for row in rows:
        for cell in row.evaluate(PHONE_CELLS):
            assert cell["label"] == f'"{cell["want"]}"', cell
            assert cell["lines"] == 1, cell
            assert cell["top"] <= 4, cell  # the value beside its label, not under it
    memory = [c for c in total.evaluate(PHONE_CELLS) if c["want"] == "Max memory"]
    assert memory and memory[0]["value"].endswith(" MiB")
    shots = Path(os.environ.get("GPU_MONITOR_SCREENSHOT_DIR", tmp_path))
    page.locator("#total").screenshot(path=str(shots / "usage-crowd-390-total.png"))
