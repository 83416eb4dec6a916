"""The dashboard page, rendered on the server (the browser test is in tests/e2e)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

import gpu_monitor
from gpu_monitor import dashboard
from gpu_monitor.contrib.health_check import GPUHealthCheck
from gpu_monitor.manager import get_manager


def page(client: Client, query: str = "") -> str:
    response = client.get(f"/api/gpu/dashboard/{query}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def config(html: str) -> dict[str, object]:
    match = re.search(
        r'<script id="gpu-monitor-config" type="application/json">(.*?)</script>', html
    )
    assert match
    loaded: dict[str, object] = json.loads(match.group(1))
    return loaded


def test_one_card_per_gpu_with_numbers(fake_nvml: ModuleType, client: Client) -> None:
    html = page(client)

    cards = html.split('<template id="card-template">')[0]
    assert cards.count('<article class="card"') == 2  # plus one in the template
    assert 'Driver <span id="driver-version">580.159.04</span>' in html
    assert 'CUDA <span id="cuda-version">13.0</span>' in html
    assert '<span class="value" data-field="memory">0 / 81559 MiB (0%)</span>' in html
    assert '<span class="value" data-field="temperature">34 °C</span>' in html
    assert '<span data-field="power">71 W / 700 W</span>' in html
    assert 'id="no-gpu" class="no-gpu" hidden' in html


def test_lost_gpu_card_is_marked_with_its_error(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    html = page(client)

    assert '<article class="card unavailable" data-index="1" data-uuid="">' in html
    assert '<span data-field="error_message">GPU is lost</span>' in html


def test_without_nvml_the_page_says_why(
    without_fleet_and_usage: None, fake_nvml: ModuleType, client: Client
) -> None:
    """The dashboard alone (no other page to go to): a red error."""
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    html = page(client)

    assert "<article" not in html.split('<template id="card-template">')[0]
    assert 'id="no-gpu" class="no-gpu" >' in html
    assert '<span id="no-gpu-reason">Driver Not Loaded</span>' in html
    assert 'Driver <span id="driver-version">N/A</span>' in html


@pytest.mark.parametrize(
    ("query", "interval"),
    [
        ("", 5),
        ("?interval=2", 2),
        ("?interval=0", 1),
        ("?interval=99999", 3600),
        ("?interval=x", 5),
    ],
)
def test_refresh_interval_from_query(
    fake_nvml: ModuleType, client: Client, query: str, interval: int
) -> None:
    html = page(client, query)

    assert config(html) == {
        "dashboard": "/api/gpu/dashboard",  # the page refreshes from its own JSON
        "interval": interval,
        "high_percent": 90,  # gpu_monitor.rules: the bars' colours, one definition
        "hot_temperature_c": 80,
        "host": socket.gethostname(),  # this server's history only: a fleet shares the database
    }
    assert f"refresh every {interval} s" in html


def test_dashboard_follows_the_permission_settings(fake_nvml: ModuleType, client: Client) -> None:
    locked = {"PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}
    with override_settings(GPU_MONITOR=locked):
        response = client.get("/api/gpu/dashboard/")

    assert response.status_code == 403
    assert b"NVIDIA" not in response.content


def test_assets_are_local_static_files() -> None:
    package = Path(gpu_monitor.__file__).parent
    for name in ("gpu_monitor/dashboard.css", "gpu_monitor/page.js", "gpu_monitor/dashboard.js"):
        assert finders.find(name), name
    # The core's and the sub-apps' (the history's panel among them).
    texts = [p.read_text() for p in package.glob("**/static/**/*.*")]
    texts += [p.read_text() for p in package.glob("**/templates/**/*.html")]
    assert len(texts) >= 16
    for text in texts:
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, not a fetch
        assert "http://" not in text and "https://" not in text and "@import" not in text
    css = (package / "static" / "gpu_monitor" / "dashboard.css").read_text()
    assert "prefers-color-scheme: dark" in css


def test_a_page_counts_gpus_once(fake_nvml: ModuleType, client: Client) -> None:
    page(client)
    fake_nvml.CALLS.clear()

    page(client)

    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 1


def test_processes_absent_for_a_viewer_who_may_not_see_them(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=1, scenario="load")

    html = page(client)

    assert 'data-field="processes"' not in html
    assert "Processes" not in html and "11345" not in html
    assert fake_nvml.CALLS["nvmlDeviceGetComputeRunningProcesses"] == 0


def test_admin_sees_each_cards_processes(fake_nvml: ModuleType, client: Client, db: None) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    fake_nvml.STATE.gpus[1].processes = []
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))

    html = page(client)

    cards = html.split('<template id="card-template">')[0].split('<article class="card"')[1:]
    assert len(cards) == 2
    assert cards[0].count("<li>") == 3
    assert '<span class="pid">11345</span>' in cards[0]
    assert '<span class="used">15690 MiB</span>' in cards[0]
    assert "width: 19.2%" in cards[0]  # 15690 of 81559 MiB: the share of the memory bar
    assert '<li class="none">No processes</li>' in cards[1]


def test_opened_processes_are_shown_to_anyone_the_project_allows(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=1, scenario="load")
    with override_settings(
        GPU_MONITOR={"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    ):
        html = page(client)

    assert '<span class="pid">11327</span>' in html


def dashboard_json(client: Client, **headers: str) -> dict[str, Any]:
    response = client.get("/api/gpu/dashboard/", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    loaded: dict[str, Any] = json.loads(response.content)
    return loaded


@pytest.mark.parametrize(
    "how", [{"QUERY_STRING": "format=json"}, {"HTTP_ACCEPT": "application/json"}]
)
def test_json_is_what_the_page_shows(
    fake_nvml: ModuleType, client: Client, how: dict[str, str]
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    body = dashboard_json(client, **how)

    devices = client.get("/api/gpu/devices").json()["devices"]
    assert [{k: v for k, v in d.items() if k != "problems"} for d in body["devices"]] == devices
    assert [d["problems"] for d in body["devices"]] == [[], []]
    assert body["count"] == 2
    assert body["status"] == client.get("/api/gpu/status").json()
    assert body["driver"] == client.get("/api/gpu/driver").json()
    assert body["processes"] is None  # an anonymous viewer may not see them


def test_json_without_nvml_has_no_driver(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    body = dashboard_json(client, HTTP_ACCEPT="application/json")

    assert body["devices"] == [] and body["count"] == 0 and body["driver"] is None
    assert body["status"]["error_message"] == "Driver Not Loaded"


def test_json_lists_processes_to_an_admin(fake_nvml: ModuleType, client: Client, db: None) -> None:
    fake_nvml.configure(gpus=1, scenario="load")
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))

    body = dashboard_json(client, QUERY_STRING="format=json")

    processes = client.get("/api/gpu/processes").json()
    assert body["processes"] == processes
    assert [p["pid"] for p in body["processes"]["processes"]] == [11345, 11327, 11328]


@pytest.mark.parametrize(
    ("how", "status"),
    [
        ({"QUERY_STRING": "format=api"}, 404),  # no renderer has that format: DRF's 404
        ({"QUERY_STRING": "format=xml"}, 404),
        ({"HTTP_ACCEPT": "application/xml"}, 406),  # nothing acceptable: DRF's 406
    ],
)
def test_other_formats_are_refused_not_a_500(
    fake_nvml: ModuleType, client: Client, how: dict[str, str], status: int
) -> None:
    response = client.get("/api/gpu/dashboard/", **how)

    assert response.status_code == status
    assert f"Error {status}: " in response.content.decode()  # the short error page


@pytest.mark.parametrize(
    ("change", "badges"),
    [
        ({"ecc_uncorrected_volatile": 2}, ["ECC 2"]),
        ({"remapped_rows": (0, 1, 1, 0)}, ["Remap pending"]),
        ({"remapped_rows": (0, 0, 0, 1)}, ["Remap failed"]),
        ({"retired_pages_pending": 1, "errors": {}}, ["Pages pending"]),
        ({"clocks_event_reasons": 0x8 | 0x40}, ["HW slowdown"]),
        ({"ecc_uncorrected_volatile": 1, "clocks_event_reasons": 0x80}, ["ECC 1", "HW slowdown"]),
    ],
)
def test_hardware_problems_are_badges_by_the_health_checks_rule(
    fake_nvml: ModuleType, client: Client, change: dict[str, object], badges: list[str]
) -> None:
    for name, value in change.items():
        setattr(fake_nvml.STATE.gpus[1], name, value)

    html = page(client)
    body = dashboard_json(client, HTTP_ACCEPT="application/json")

    cards = html.split('<template id="card-template">')[0].split("<article ")[1:]
    shown = re.findall(
        r'<span class="badge bad" data-kind="[a-z_]+" title="[^"]+">([^<]+)<', cards[1]
    )
    assert shown == badges
    assert 'class="badge bad"' not in cards[0]
    assert 'class="card problem"' in cards[1]
    problems = body["devices"][1]["problems"]
    assert [p["badge"] for p in problems] == badges
    assert body["devices"][0]["problems"] == []
    # The same conditions and words as the health check's, from gpu_monitor.rules.
    reasons = GPUHealthCheck().problems(get_manager().get_device(1))
    assert reasons == [f"GPU 1: {p['message']}" for p in problems]
    for p in problems:
        assert f'title="{p["message"]}"' in cards[1]


def test_harmless_clock_events_are_no_badge(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[0].clocks_event_reasons = 0x1 | 0x4 | 0x20  # idle, sw cap, sw thermal
    fake_nvml.STATE.gpus[0].ecc_corrected_volatile = 3

    html = page(client)

    assert 'class="badge bad"' not in html.split('<template id="card-template">')[0]


def test_mig_slices_with_their_memory(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")

    html = page(client)

    card = html.split('<template id="card-template">')[0]
    slices = re.findall(
        r'<li title="(MIG-[^"]+)"><span class="who">([^<]+)</span><span class="used">([^<]+)<',
        card,
    )
    assert slices == [
        ("MIG-00000000-0000-0000-0000-000000000000", "1c.3g.71gb", "16925 / 71424 MiB"),
        ("MIG-00000001-0000-0000-0000-000000000001", "2c.3g.71gb", "16925 / 71424 MiB"),
        ("MIG-00000002-0000-0000-0000-000000000002", "2g.35gb", "17 / 33280 MiB"),
        ("MIG-00000003-0000-0000-0000-000000000003", "1g.18gb", "9 / 16384 MiB"),
        ("MIG-00000004-0000-0000-0000-000000000004", "1g.18gb", "9 / 16384 MiB"),
    ]
    assert '<div class="mig" >' in card


def test_no_mig_section_without_mig(fake_nvml: ModuleType, client: Client) -> None:
    card = page(client).split('<template id="card-template">')[0]

    assert '<div class="mig" hidden>' in card
    assert "<li title=" not in card


def test_utilisation_not_available_says_why(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2)
    fake_nvml.STATE.gpus[1].errors["utilization"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    html = page(client)

    cards = html.split('<template id="card-template">')[0].split("<article ")[1:]
    assert 'data-field="utilization" title="Not Supported">N/A</span>' in cards[1]
    assert '<p class="why" data-field="utilization_why" >N/A: Not Supported</p>' in cards[1]
    assert '<p class="why" data-field="utilization_why" hidden>' in cards[0]


def test_high_values_are_marked_on_the_server_too(fake_nvml: ModuleType, client: Client) -> None:
    gpu = fake_nvml.STATE.gpus[1]
    gpu.utilization_gpu, gpu.temperature, gpu.used_v2 = 90, 80, 73404 * 1024 * 1024  # 90.0 %

    cards = page(client).split('<template id="card-template">')[0].split("<article ")[1:]

    for name in ("memory", "utilization", "temperature"):
        assert f'<div class="fill" data-bar="{name}"' in cards[0]
        assert f'<div class="fill high" data-bar="{name}"' in cards[1]


@pytest.mark.parametrize(
    ("used", "total", "text"),
    [
        (1, 200, "1 / 200 MiB (1%)"),  # 0.5 %: half up, as page.js (f"{0.5:.0f}" said 0)
        (5, 200, "5 / 200 MiB (3%)"),  # 2.5 %: 3 (f"{2.5:.0f}" said 2)
        (0, 81559, "0 / 81559 MiB (0%)"),
        (61170, 81559, "61170 / 81559 MiB (75%)"),
        (0, 0, "N/A"),  # no total: unknown, as memory_used_percent (page.js said 0 / 0 MiB)
        (None, 81559, "N/A"),
        (10, None, "N/A"),
    ],
)
def test_memory_text_rounds_half_up_and_says_na_without_a_total(
    used: int | None, total: int | None, text: str
) -> None:
    assert dashboard.memory_text(used, total) == text


@pytest.mark.parametrize(
    ("draw", "limit", "text"),
    [
        (70.5, 700.0, "71 W / 700 W"),  # half up (f"{70.5:.0f}" said 70, toFixed 71)
        (71.49, None, "71 W"),
        (0.0, 0.0, "0 W"),
        (None, 700.0, "Power N/A"),
    ],
)
def test_power_text_rounds_half_up(draw: float | None, limit: float | None, text: str) -> None:
    assert dashboard.power_text(draw, limit) == text


def test_the_history_contributes_its_panel(fake_nvml: ModuleType, client: Client) -> None:
    html = page(client)

    cards = html.split('<template id="card-template">')[0].split("<article ")[1:]
    assert all(card.count('<figure class="chart"') == 3 for card in cards)
    assert '<p id="history-error" class="api-error" role="alert" hidden></p>' in html
    assert re.findall(r'data-window="([^"]+)"', html) == ["-1h", "-6h", "-24h", "-7d"]
    urls = re.search(r'<script id="gpu-monitor-history" type="application/json">(.*?)</', html)
    assert urls and json.loads(urls.group(1)) == {
        "history": "/api/gpu/history",
        "events": "/api/gpu/events",
    }
    scripts = re.findall(r'<script src="/static/([^"]+)" defer>', html)
    assert scripts == [
        "gpu_monitor/page.js",
        "gpu_monitor/dashboard.js",
        "gpu_monitor/history/charts.js",
    ]


@pytest.fixture
def core_only() -> Iterator[None]:
    from django.conf import settings

    from tests.history.test_history_api import reload_urls

    optional = (
        "gpu_monitor.history",
        "gpu_monitor.fleet",
        "gpu_monitor.usage",
        "gpu_monitor.notify",
    )
    installed = [app for app in settings.INSTALLED_APPS if app not in optional]
    with override_settings(INSTALLED_APPS=installed):
        reload_urls()
        yield
    reload_urls()


def test_without_the_history_the_page_has_no_panel(
    fake_nvml: ModuleType, client: Client, core_only: None
) -> None:
    html = page(client)

    assert "chart" not in html and "data-window" not in html and "history" not in html
    scripts = re.findall(r'<script src="/static/([^"]+)" defer>', html)
    assert scripts == ["gpu_monitor/page.js", "gpu_monitor/dashboard.js"]
    assert '<span class="value" data-field="memory">0 / 81559 MiB (0%)</span>' in html


# -- the pages' nav (dashboard.page_links) -------------------------------------------


def nav_links(html: str) -> list[tuple[str, str, str]]:
    """The nav's links as (label, href, aria-current or "")."""
    nav = re.search(r'<nav class="pages"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, html[:500]
    return [
        (label, href, current)
        for href, current, label in re.findall(
            r'<a href="([^"]+)"(?: aria-current="(\w+)")?>([^<]+)</a>', nav.group(1)
        )
    ]


def test_the_nav_lists_the_installed_pages_and_marks_the_dashboard(
    fake_nvml: ModuleType, client: Client, db: None
) -> None:
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))

    assert nav_links(page(client)) == [
        ("Dashboard", "/api/gpu/dashboard", "page"),
        ("Fleet", "/api/gpu/fleet", ""),
        ("Usage", "/api/gpu/usage", ""),
    ]


def test_the_nav_hides_a_page_the_viewer_may_not_open(
    fake_nvml: ModuleType, client: Client
) -> None:
    """An anonymous viewer does not pass the usage page's PROCESS_PERMISSION_CLASSES
    (admins, by default): no link to a page that would answer 403."""
    assert client.get("/api/gpu/usage/", HTTP_ACCEPT="text/html").status_code == 403
    assert nav_links(page(client)) == [
        ("Dashboard", "/api/gpu/dashboard", "page"),
        ("Fleet", "/api/gpu/fleet", ""),
    ]
    opened = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    with override_settings(GPU_MONITOR=opened):
        assert [label for label, _, _ in nav_links(page(client))] == [
            "Dashboard",
            "Fleet",
            "Usage",
        ]


@pytest.fixture
def without_fleet_and_usage() -> Iterator[None]:
    from django.conf import settings

    from tests.history.test_history_api import reload_urls

    optional = ("gpu_monitor.fleet", "gpu_monitor.usage", "gpu_monitor.notify")
    installed = [app for app in settings.INSTALLED_APPS if app not in optional]
    with override_settings(INSTALLED_APPS=installed):
        reload_urls()
        yield
    reload_urls()


def test_without_fleet_and_usage_the_nav_has_the_dashboard_only(
    fake_nvml: ModuleType, client: Client, without_fleet_and_usage: None
) -> None:
    assert nav_links(page(client)) == [("Dashboard", "/api/gpu/dashboard", "page")]


def test_an_error_page_has_the_nav_too(fake_nvml: ModuleType, client: Client) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": ["no.such.Permission"]}):
        response = client.get("/api/gpu/dashboard/")

    assert response["Content-Type"].startswith("text/html")
    # The sub-apps' pages would refuse too (a GPU_MONITOR the checks reject): not listed.
    assert [label for label, _, _ in nav_links(response.content.decode())] == ["Dashboard"]


def test_without_a_gpu_the_nav_leaves_the_dashboard_out(
    fake_nvml: ModuleType, client: Client, db: None
) -> None:
    """A central site (no NVML here, other pages installed): only the pages that have
    something to show; the dashboard still answers, with a notice that links them."""
    fake_nvml.configure(gpus=1, scenario="no_nvml")
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))

    html = page(client)

    assert nav_links(html) == [("Fleet", "/api/gpu/fleet", ""), ("Usage", "/api/gpu/usage", "")]
    assert nav_links(client.get("/api/gpu/fleet/").content.decode())[0] == (
        "Fleet",
        "/api/gpu/fleet",
        "page",
    )
    notice = re.search(r'<p id="no-gpu" class="no-gpu-here" role="status">(.*?)</p>', html, re.S)
    assert notice, html
    assert '<span id="no-gpu-reason">NVML Shared Library Not Found</span>' in notice.group(1)
    assert re.findall(r'<a href="([^"]+)">(\w+)</a>', notice.group(1)) == [
        ("/api/gpu/fleet", "Fleet"),
        ("/api/gpu/usage", "Usage"),
    ]
    assert 'class="no-gpu"' not in html and 'role="alert">' not in html.split("</header>")[1]


def test_without_a_gpu_an_anonymous_viewer_is_led_to_the_pages_they_may_open(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=1, scenario="no_nvml")

    assert nav_links(page(client)) == [("Fleet", "/api/gpu/fleet", "")]


def test_a_gpu_node_without_nvml_and_without_other_pages_keeps_its_dashboard(
    without_fleet_and_usage: None, fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=1, scenario="no_nvml")

    html = page(client)

    assert nav_links(html) == [("Dashboard", "/api/gpu/dashboard", "page")]
    assert 'id="no-gpu" class="no-gpu" >' in html


@override_settings(ROOT_URLCONF="tests.unit.front_page_urls")
@pytest.mark.parametrize(
    ("scenario", "login", "front"),
    [
        ("healthy", False, "/api/gpu/dashboard"),
        ("no_nvml", False, "/api/gpu/fleet"),
        ("no_nvml", True, "/api/gpu/fleet"),
    ],
)
def test_the_front_page_leads_to_the_first_page_with_something_to_show(
    fake_nvml: ModuleType, client: Client, db: None, scenario: str, login: bool, front: str
) -> None:
    fake_nvml.configure(gpus=1, scenario=scenario)
    if login:
        client.force_login(User.objects.create_superuser("root", password="pw-root-123"))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == front


@override_settings(ROOT_URLCONF="tests.unit.front_page_urls")
def test_the_front_page_leads_to_the_dashboard_when_the_viewer_may_open_nothing(
    fake_nvml: ModuleType, client: Client
) -> None:
    """The dashboard then says why (403 and a way to sign in)."""
    fake_nvml.configure(gpus=1, scenario="no_nvml")
    with override_settings(GPU_MONITOR=LOCKED):
        response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/api/gpu/dashboard"


@pytest.mark.parametrize(
    ("path", "title"),
    [("/api/gpu/usage/", "Usage"), ("/api/gpu/fleet/", "Fleet"), ("/api/gpu/dashboard/", "GPUs")],
)
def test_a_refused_pages_title_names_the_page(
    fake_nvml: ModuleType, client: Client, path: str, title: str
) -> None:
    with override_settings(GPU_MONITOR=LOCKED):
        response = client.get(path, HTTP_ACCEPT="text/html")

    assert response.status_code == 403
    html = response.content.decode()
    assert f"<title>{title} · error 403</title>" in html
    assert f"<h1>{title}</h1>" in html


def test_an_unknown_hosts_page_is_titled_by_the_fleet(
    fake_nvml: ModuleType, client: Client, db: None
) -> None:
    response = client.get("/api/gpu/fleet/no-such-host/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert "<title>Fleet · error 404</title>" in response.content.decode()


def test_every_page_links_its_favicon(fake_nvml: ModuleType, client: Client, db: None) -> None:
    """No browser asks for /favicon.ico (a 404 in every page's log)."""
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    link = '<link rel="icon" href="/static/gpu_monitor/favicon.svg" type="image/svg+xml">'
    for path in (
        "/api/gpu/dashboard/",
        "/api/gpu/fleet/",
        "/api/gpu/usage/",
        "/api/gpu/fleet/no-such-host/",  # error.html
    ):
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response["Content-Type"].startswith("text/html"), path
        assert link in response.content.decode(), path
    icon = finders.find("gpu_monitor/favicon.svg")
    assert icon and Path(icon).read_text().startswith("<svg xmlns=")


LOCKED = {"PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}


@override_settings(GPU_MONITOR=LOCKED, LOGIN_URL="admin:login")
def test_a_refused_anonymous_viewer_gets_a_sign_in_link_back_to_the_page(
    fake_nvml: ModuleType, client: Client
) -> None:
    response = client.get("/api/gpu/dashboard/?interval=9")

    assert response.status_code == 403
    assert (
        '<a id="sign-in" href="/admin/login/?next=/api/gpu/dashboard/%3Finterval%3D9">Sign in</a>'
        in response.content.decode()
    )


@override_settings(GPU_MONITOR=LOCKED)
def test_no_sign_in_link_where_the_login_url_is_no_page_of_the_project(
    fake_nvml: ModuleType, client: Client
) -> None:
    response = client.get("/api/gpu/dashboard/")  # LOGIN_URL: Django's /accounts/login/

    assert response.status_code == 403
    assert 'id="sign-in"' not in response.content.decode()


@override_settings(GPU_MONITOR=LOCKED, LOGIN_URL="https://sso.example.com/login?app=gpu")
def test_a_login_page_on_another_site_keeps_its_query_and_gets_next(
    fake_nvml: ModuleType, client: Client
) -> None:
    text = client.get("/api/gpu/dashboard/").content.decode()

    assert (
        'href="https://sso.example.com/login?app=gpu&amp;next=/api/gpu/dashboard/">Sign in</a>'
        in text
    )
