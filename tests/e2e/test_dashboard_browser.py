"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright).

Starts the example server on the fake NVML, waits for the cards, checks the numbers
shown equal the API's, changes the fake data and sees the page update in place (and
say so when the API cannot be reached); charts from the recorder and from canned history
answers (maxima, where data falls in the window, the local-time axis, the hover
read-out); badges; and the layout of 1, 4 and 8 GPUs from 1280 to 1920 px. A screenshot
is saved (``GPU_MONITOR_SCREENSHOT=path.png`` to keep it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from tests.e2e import ROOT, Server
from tests.e2e.conftest import KATHMANDU, StartServer

MIB = 1024 * 1024
pytestmark = pytest.mark.e2e


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


def test_processes_fill_in_and_follow_the_api(start_server: StartServer, page: Page) -> None:
    """Processes opened to anyone (tests/e2e/settings_open_processes.py) on the H100 load
    capture: each card lists its processes, and a new process appears without a reload."""
    server = start_server(scenario="load", settings="tests.e2e.settings_open_processes")
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")
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

        # An XID (recorded by gpu_record, read from the events API) and uncorrected ECC
        # errors (from the dashboard's JSON) become badges on their cards, no reload.
        page.evaluate("window.notReloaded = true")
        server.state.write_text(
            json.dumps({"1": {"ecc_uncorrected_volatile": 2}, "xid": [[0, 79], [0, 48]]})
        )
        xids = page.locator('.card[data-index="0"] .badge[data-kind="xid"]')
        xids.nth(1).wait_for(timeout=30_000)
        assert sorted(xids.all_inner_texts()) == ["XID 48", "XID 79"]
        page.wait_for_timeout(1100)  # one event per GPU, XID and second: a second later
        server.state.write_text(
            json.dumps({"1": {"ecc_uncorrected_volatile": 2}, "xid": [[0, 79]]})
        )
        xid = xids.filter(has_text="XID 79")
        page.wait_for_function(
            """Array.from(document.querySelectorAll(
                   '.card[data-index="0"] .badge[data-kind="xid"]'))
                   .some((badge) => badge.textContent === 'XID 79 \u00d72')""",
            timeout=30_000,
        )
        assert "in the last 24 h" in (xid.get_attribute("title") or "")
        ecc = page.locator('.card[data-index="1"] .badge[data-kind="uncorrected_ecc"]')
        assert ecc.inner_text() == "ECC 2"
        assert ecc.get_attribute("title") == "2 uncorrected ECC error(s)"
        assert page.locator('.card[data-index="1"] .badge[data-kind="xid"]').count() == 0
        assert page.evaluate("window.notReloaded") is True
    finally:
        recorder.terminate()
        recorder.wait(10)


GPU0_UUID = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"


def history_body(since: int, step: int, columns: dict[str, list[Any]]) -> str:
    """A ``GET history`` answer with GPU 0's ``columns`` (each the length of the window's
    buckets, None where no sample fell) for the window from ``since``."""
    count = len(next(iter(columns.values())))
    until = since + count * step
    t = [since + i * step for i in range(count)]
    none = [None] * count
    series = {
        "gpu_uuid": GPU0_UUID,
        "gpu_index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "t": t,
        "utilization_percent": none,
        "utilization_percent_max": none,
        "used_memory_mb": none,
        "total_memory_mb": none,
        "temperature_c": none,
        "power_draw_w": none,
        **columns,
    }
    iso = "%Y-%m-%dT%H:%M:%SZ"
    body = {
        "host": "test",
        "since": time.strftime(iso, time.gmtime(since)),
        "until": time.strftime(iso, time.gmtime(until)),
        "step_seconds": step,
        "series": [series],
    }
    return json.dumps(body)


def route_history(page: Page, since: int, step: int, columns: dict[str, list[Any]]) -> None:
    """Answer the page's history requests with ``history_body(since, step, columns)``."""
    body = history_body(since, step, columns)
    page.route(
        "**/api/gpu/history?*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=body),
    )


def chart(page: Page, name: str) -> Any:
    return page.locator(f'.card[data-index="0"] [data-chart="{name}"]')


def path_xs(d: str) -> list[float]:
    numbers = [float(n) for n in d.replace("M", " ").replace("L", " ").replace("Z", " ").split()]
    return numbers[0::2]


def test_chart_maximum_is_the_bucket_maximum_and_hover_reads_it(
    start_server: StartServer, kathmandu_page: Page
) -> None:
    """Item 9: the "max" of a chart is the largest bucket maximum, not the largest
    bucket average (a 95 % spike in a 40 % bucket says 95 % at every window)."""
    page = kathmandu_page
    server = start_server(scenario="healthy", gpus=1)
    step, count = 12, 300
    since = (int(time.time()) // step - count + 1) * step
    average = [None] * (count - 10) + [40.0] * 10
    peak = [None] * (count - 10) + [60, 60, 60, 95, 60, 60, 60, 60, 60, 60]
    route_history(
        page,
        since,
        step,
        {
            "utilization_percent": average,
            "utilization_percent_max": peak,
            "temperature_c": [None] * (count - 10) + [50] * 10,
        },
    )
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=60")
    ranges = page.locator('.card[data-index="0"] [data-range="utilization"]')
    page.wait_for_function(
        """document.querySelector('.card[data-index="0"] [data-range="utilization"]')
               .textContent !== ''"""
    )
    assert ranges.inner_text() == "max 95%"
    assert page.locator('.card[data-index="0"] [data-range="temperature"]').inner_text() == (
        "max 50 °C"
    )

    # Hover over the bucket of the spike: its time (local) and average and maximum.
    plot = chart(page, "utilization").locator(".plot")
    box = plot.bounding_box()
    assert box
    share = (count - 7 + 0.5) / count
    page.mouse.move(box["x"] + share * box["width"], box["y"] + box["height"] / 2)
    readout = chart(page, "utilization").locator(".readout")
    readout.wait_for()
    local = time.gmtime(since + (count - 7) * step + KATHMANDU)
    assert readout.inner_text() == f"{time.strftime('%H:%M', local)} avg 40%, max 95%"


def test_chart_draws_data_where_it_falls_with_a_local_time_axis(
    start_server: StartServer, kathmandu_page: Page
) -> None:
    """Item 10: 20 minutes in a 7-day window are drawn as 20 minutes at the right end,
    the rest says "no data"; ticks fall on local midnights; hover reads time and value."""
    page = kathmandu_page
    server = start_server(scenario="healthy", gpus=1)
    step, count = 600, 1008  # 7 days of 10-minute buckets
    since = (int(time.time()) // step - count + 1) * step
    temperature = [None] * (count - 2) + [61, 62]  # the last 20 minutes
    route_history(page, since, step, {"temperature_c": temperature})
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=60")
    figure = chart(page, "temperature")
    page.wait_for_function(
        """document.querySelector('.card[data-index="0"] [data-chart="temperature"] .line')
               .getAttribute('d').startsWith('M')"""
    )
    xs = path_xs(figure.locator(".line").get_attribute("d") or "")
    assert min(xs) == pytest.approx(300 * (count - 2) / count, abs=0.01)
    assert max(xs) == pytest.approx(300, abs=0.01)
    gap = figure.locator(".nodata")
    assert gap.count() == 1 and gap.inner_text() == "no data"
    gap_box, plot_box = gap.bounding_box(), figure.locator(".plot").bounding_box()
    assert gap_box and plot_box
    assert gap_box["width"] == pytest.approx(plot_box["width"] * (count - 2) / count, abs=1)

    ticks = figure.locator(".axis span")
    assert ticks.count() >= 3
    for i in range(ticks.count()):
        epoch = int(ticks.nth(i).get_attribute("data-t") or "")
        assert (epoch + KATHMANDU) % 86400 == 0  # a local midnight, not UTC's
        local = time.gmtime(epoch + KATHMANDU)
        assert str(local.tm_mday) in ticks.nth(i).inner_text()

    box = figure.locator(".plot").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    readout = figure.locator(".readout")
    readout.wait_for()
    # The last two buckets are a pixel wide: the read-out takes the nearest one.
    last = [
        f"{time.strftime('%H:%M', time.gmtime(since + i * step + KATHMANDU))} {v} °C"
        for i, v in ((count - 2, 61), (count - 1, 62))
    ]
    assert readout.inner_text().split(", ")[-1] in last
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert readout.inner_text().endswith("no data")
    page.mouse.move(0, 0)
    readout.wait_for(state="hidden")


# Every element that holds a label or value on one line, in a card.
LABELS = (
    "h2 .index, h2 .name, .badge, .label > span, .why, .details, .mig li > span,"
    " .chart figcaption > span, .axis span, .nodata > span, .events li, .error"
)
LAYOUT_PROBLEMS = """(selector) => {
  const found = [];
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  for (const card of document.querySelectorAll("#cards .card")) {
    const cardBox = card.getBoundingClientRect();
    const labels = Array.from(card.querySelectorAll(selector)).filter(visible);
    if (labels.length < 10) found.push(`card ${card.dataset.index}: only ${labels.length} labels`);
    const name = (e) => `card ${card.dataset.index} ${e.className || e.tagName} "${e.textContent}"`;
    const boxes = labels.map((e) => [e, e.getBoundingClientRect()]);
    for (const [e, r] of boxes) {
      const style = getComputedStyle(e);
      let lineHeight = parseFloat(style.lineHeight);
      if (Number.isNaN(lineHeight)) { // "normal": the height of one line in its font
        const probe = document.createElement("span");
        probe.style.cssText = `display: block; white-space: nowrap; font: ${style.font}`;
        probe.textContent = "Xg";
        document.body.append(probe);
        lineHeight = probe.getBoundingClientRect().height;
        probe.remove();
      }
      const inner = r.height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom)
        - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
      if (style.display === "inline" ? e.getClientRects().length > 1 : inner > lineHeight + 0.5) {
        found.push(`${name(e)} wraps: ${inner} px high, line ${lineHeight} px`);
      }
      if (r.left < cardBox.left - 0.5 || r.right > cardBox.right + 0.5) {
        found.push(`${name(e)} sticks out of its card`);
      }
    }
    boxes.forEach(([a, ra], i) => boxes.slice(i + 1).forEach(([b, rb]) => {
      if (a.contains(b) || b.contains(a)) return;
      // Side by side, texts need a gap (3 px) or they read as one: "Memory48128".
      const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left) + 3;
      const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (x > 0.5 && y > 0.5) found.push(`${name(a)} overlaps ${name(b)}`);
    }));
  }
  return found;
}"""


@pytest.mark.parametrize("gpus", [1, 4, 8])
def test_no_label_overlaps_or_wraps(start_server: StartServer, page: Page, gpus: int) -> None:
    """Item 11 from 1280 to 1920 px: GPU 0 is the H200 of the MIG capture (five slices,
    utilisation N/A with its reason); GPU 1 has the longest memory text and three
    badges; one GPU is at full power."""
    state = {
        "0": {"used_v2": 143771 * MIB, "temperature": 100},
        "1": {
            "used_v2": 81559 * MIB,
            "utilization_gpu": 100,
            "ecc_uncorrected_volatile": 12345,
            "remapped_rows": [0, 1, 1, 1],
            "clocks_event_reasons": 0x8 | 0x40 | 0x80,
        },
        str(gpus - 1): {"power_mw": 700000},
    }
    server = start_server(scenario="mig", gpus=gpus, state=state)
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=60")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")
    assert page.locator("#cards .card").count() == gpus
    assert page.locator('.card[data-index="0"] .mig li').count() == 5
    assert page.locator('.card[data-index="0"] .why').inner_text() == "N/A: Not Supported"
    if gpus > 1:
        assert page.locator('.card[data-index="1"] .badge').count() == 4
    page.locator('[data-window="-7d"]').click()
    page.wait_for_function(
        """(() => {  // day ticks: the 7-day window is drawn
            const ticks = document.querySelectorAll('.card[data-index="0"] .axis span');
            return ticks.length > 1 && !ticks[0].textContent.includes(':');
        })()"""
    )
    for width in range(1280, 1921, 40):  # the columns change with the font size (vw)
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(50)
        problems = page.evaluate(LAYOUT_PROBLEMS, LABELS)
        assert problems == [], f"{gpus} GPU(s) at {width} px: {problems}"


def test_a_card_lists_its_events_by_uuid_and_by_index_alone(
    start_server: StartServer, kathmandu_page: Page
) -> None:
    """A GPU lost before its UUID could be read has its gpu_lost by index alone, its
    gpu_recovered by UUID: the card lists both (it showed one kind only)."""
    page = kathmandu_page
    server = start_server(scenario="healthy", gpus=2)
    route_history(page, int(time.time()) // 12 * 12 - 3600, 12, {"temperature_c": [50] * 300})
    now = int(time.time())

    def event(kind: str, uuid: str, index: int, ago: int) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - ago))
        return {
            "host": "test",
            "gpu_uuid": uuid,
            "gpu_index": index,
            "timestamp": stamp,
            "kind": kind,
            "xid": None,
            "message": "",
        }

    results = [
        event("gpu_recovered", GPU0_UUID, 0, 60),
        event("gpu_lost", "", 0, 120),
        event("gpu_lost", "", 1, 180),  # another GPU's, by index alone: not GPU 0's
    ]
    body = {"count": 3, "next": None, "previous": None, "results": results}
    page.route(
        "**/api/gpu/events?*",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps(
                body if "kind=xid" not in route.request.url else {**body, "count": 0, "results": []}
            ),
        ),
    )
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=60")
    listed = page.locator('.card[data-index="0"] [data-field="events"] li')
    listed.first.wait_for()

    texts = listed.all_inner_texts()
    assert len(texts) == 2
    assert "recovered" in texts[0].lower() and "lost" in texts[1].lower()


# -- the fixes of issue 27: each test fails on the page scripts before it -----------------


def test_a_failed_history_read_is_said_in_the_panel_not_as_the_gpu_api(
    start_server: StartServer, page: Page
) -> None:
    """The dashboard's JSON answers, the history does not: the cards stay live and the
    history's panel says that the history failed (the page said "Cannot reach the GPU
    API" and stopped saying "Updated")."""
    server = start_server(scenario="healthy", gpus=2)
    detail = "The GPU history database did not answer (OperationalError); see the server log."
    page.route(
        "**/api/gpu/history?*",
        lambda route: route.fulfill(
            status=503, content_type="application/json", body=json.dumps({"detail": detail})
        ),
    )
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
    said = """(() => {
        const shown = (id) => document.getElementById(id) && !document.getElementById(id).hidden;
        return shown('api-error') || shown('history-error');
    })()"""
    page.wait_for_function(said)

    assert page.locator("#api-error").is_hidden(), page.locator("#api-error").inner_text()
    assert page.locator("#history-error").inner_text() == (
        f"Cannot read the GPU history (HTTP 503: {detail}); showing data from page load."
    )
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")
    server.state.write_text(json.dumps({"0": {"temperature": 77}}))
    page.wait_for_function(
        """document.querySelector('.card[data-index="0"] [data-field="temperature"]')
               .textContent === '77 °C'"""
    )
    assert page.locator("#api-error").is_hidden()

    # The history answers again: the next read (a window button) clears the panel's line.
    page.unroute("**/api/gpu/history?*")
    page.locator('[data-window="-6h"]').click()
    page.wait_for_selector("#history-error", state="hidden")


def test_a_slow_answer_for_the_previous_window_never_redraws_the_charts(
    start_server: StartServer, page: Page
) -> None:
    """The 1 h answer is held back until the viewer has chosen 7 d and its charts are
    drawn; when it comes, it is dropped (it redrew the 7 d charts with the 1 h data)."""
    server = start_server(scenario="healthy", gpus=1)
    now = int(time.time())
    peak = {"utilization_percent": [None] * 1007 + [77], "utilization_percent_max": None}
    peak["utilization_percent_max"] = peak["utilization_percent"]
    week = history_body(now // 600 * 600 - 1007 * 600, 600, peak)
    low = {"utilization_percent": [None] * 299 + [11], "utilization_percent_max": None}
    low["utilization_percent_max"] = low["utilization_percent"]
    hour = history_body(now // 12 * 12 - 299 * 12, 12, low)
    held: list[Route] = []

    def answer(route: Route) -> None:
        if "since=-1h" in route.request.url:
            held.append(route)  # answered later, by hand
        else:
            route.fulfill(status=200, content_type="application/json", body=week)

    page.route("**/api/gpu/history?*", answer)
    page.goto(f"{server.url}/api/gpu/dashboard/?interval=60")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page did not ask for the 1 h window"
    page.locator('[data-window="-7d"]').click()
    shown = '.card[data-index="0"] [data-range="utilization"]'
    page.wait_for_function(f"document.querySelector('{shown}').textContent === 'max 77%'")

    for route in held:
        route.fulfill(status=200, content_type="application/json", body=hour)
    page.wait_for_timeout(1500)

    assert page.locator(shown).inner_text() == "max 77%"
    assert page.locator('[data-window="-7d"]').get_attribute("aria-pressed") == "true"


def test_the_first_render_and_the_refresh_say_the_same(
    start_server: StartServer, page: Page
) -> None:
    """The server renders the cards, page.js formats each refresh: one rounding (half up)
    for both. 1 MiB of 200 is 0.5 %, 70.5 W a half watt (the server said 0 % and 70 W,
    the browser 1 % and 71 W)."""
    state = {"0": {"total": 200 * MIB, "free": 199 * MIB, "used_v2": MIB, "power_mw": 70500}}
    server = start_server(scenario="healthy", gpus=1, state=state)
    request = urllib.request.Request(
        f"{server.url}/api/gpu/dashboard/?interval=1", headers={"Accept": "text/html"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        html = response.read().decode()
    first = {}
    for name in ("memory", "power", "utilization", "temperature"):
        found = re.search(rf'data-field="{name}"[^>]*>([^<]*)<', html)
        assert found, name
        first[name] = found.group(1)

    page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")

    assert {name: card_text(page, 0, name) for name in first} == first
    assert first["memory"] == "1 / 200 MiB (1%)"
    assert first["power"] == "71 W / 700 W"


def test_no_page_asks_for_a_favicon_that_is_not_there(
    start_server: StartServer, page: Page
) -> None:
    """base.html links gpu_monitor/favicon.svg: no /favicon.ico 404 in any page's log
    or Chromium's console (the usage page opened to anyone by the test settings)."""
    server = start_server(scenario="healthy", gpus=1, settings="tests.e2e.settings_open_processes")
    asked: list[tuple[int, str]] = []
    page.on("response", lambda r: asked.append((r.status, r.url)))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    for path in ("/api/gpu/dashboard/", "/api/gpu/fleet/", "/api/gpu/usage/"):
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")

    icons = [(status, url.removeprefix(server.url)) for status, url in asked if "favicon" in url]
    assert icons == [(200, "/static/gpu_monitor/favicon.svg")] * 3  # not /favicon.ico
    assert [text for text in errors if "favicon" in text] == []


def test_a_central_site_without_nvml_leads_to_its_pages_not_to_a_red_dashboard(
    start_server: StartServer, page: Page
) -> None:
    """No NVML in the server (a central site): the site's root opens the fleet, the nav
    leaves the dashboard out, and the dashboard's own URL says why calmly and links on."""
    server = start_server(scenario="no_nvml", gpus=1)

    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/api/gpu/fleet"
    assert page.locator("nav.pages a").all_inner_texts() == ["Fleet"]  # usage: admins only

    page.goto(f"{server.url}/api/gpu/dashboard/?interval=1")
    page.wait_for_function("document.getElementById('updated').textContent.startsWith('Updated')")
    notice = page.locator("#no-gpu")
    assert notice.is_visible()
    assert "No NVIDIA GPU on this server" in notice.inner_text()
    assert notice.evaluate("e => getComputedStyle(e).fontWeight") == "400"  # not the red error
    assert page.locator("nav.pages a").all_inner_texts() == ["Fleet"]
    notice.get_by_role("link", name="Fleet").click()
    page.wait_for_url(f"{server.url}/api/gpu/fleet")
