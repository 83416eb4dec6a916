"""The dashboard page, rendered on the server (the browser test is in tests/e2e)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

import gpu_monitor


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
    assert '<span data-field="memory">0 / 81559 MiB (0%)</span>' in html
    assert '<span data-field="temperature">34 °C</span>' in html
    assert '<span data-field="power">71 W / 700 W</span>' in html
    assert 'id="no-gpu" class="no-gpu" hidden' in html


def test_lost_gpu_card_is_marked_with_its_error(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    html = page(client)

    assert '<article class="card unavailable" data-index="1" data-uuid="">' in html
    assert '<span data-field="error_message">GPU is lost</span>' in html


def test_without_nvml_the_page_says_why(fake_nvml: ModuleType, client: Client) -> None:
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
        "devices": "/api/gpu/devices",
        "status": "/api/gpu/status",
        "driver": "/api/gpu/driver",
        "interval": interval,
        "history": "/api/gpu/history",  # the test settings install gpu_monitor.history
        "events": "/api/gpu/events",
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
    for name in ("gpu_monitor/dashboard.css", "gpu_monitor/dashboard.js"):
        assert finders.find(name), name
    texts = [p.read_text() for p in (package / "static").rglob("*.*")]
    texts += [p.read_text() for p in (package / "templates").rglob("*.html")]
    for text in texts:
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
    assert "processes" not in config(html)
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
    assert config(html)["processes"] == "/api/gpu/processes"


def test_opened_processes_are_shown_to_anyone_the_project_allows(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=1, scenario="load")
    with override_settings(
        GPU_MONITOR={"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    ):
        html = page(client)

    assert '<span class="pid">11327</span>' in html
