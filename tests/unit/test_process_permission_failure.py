"""A PROCESS_PERMISSION_CLASSES class that fails (raises anything but a refusal): the
process endpoints and the usage answer a JSON 503, the pages (the dashboard's and the
fleet host's, as HTML and as their JSON) are shown without processes and the failure is
logged; never a 500."""

from __future__ import annotations

import logging
import time
from types import ModuleType
from typing import Any

import pytest
from django.test import Client, override_settings

from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager

pytestmark = pytest.mark.django_db
BROKEN = {"PROCESS_PERMISSION_CLASSES": ["tests.unit.test_process_permission_failure.Broken"]}


class Broken:
    def has_permission(self, request: Any, view: Any) -> bool:
        raise RuntimeError("the directory is down")


def failures_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gpu_monitor.api" and r.levelno == logging.ERROR and r.exc_info
    ]


@pytest.mark.parametrize("path", ["processes", "devices/0/processes", "usage", "usage/idle"])
def test_the_process_endpoints_and_the_usage_are_a_json_503(
    fake_nvml: ModuleType, admin_client: Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(GPU_MONITOR=BROKEN):
        response = admin_client.get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "A permission class failed (RuntimeError); see the server log."
    }
    assert failures_logged(caplog) == [f"A permission class failed on /api/gpu/{path}"]


def test_the_dashboard_json_is_shown_without_processes(
    fake_nvml: ModuleType, admin_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    shown = admin_client.get("/api/gpu/dashboard/?format=json").json()
    with override_settings(GPU_MONITOR=BROKEN):
        response = admin_client.get("/api/gpu/dashboard/?format=json")

    assert shown["processes"]["count"] == 6  # the capture's three processes on each GPU
    assert response.status_code == 200
    body = response.json()
    assert body["processes"] is None
    assert body["count"] == 2 and body["devices"][0]["total_memory_mb"] == 81559
    assert failures_logged(caplog) == ["A permission class failed on /api/gpu/dashboard/"]


def test_the_dashboard_page_is_shown_without_processes(
    fake_nvml: ModuleType, admin_client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    with override_settings(GPU_MONITOR=BROKEN):
        response = admin_client.get("/api/gpu/dashboard/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-field="processes"' not in text and "11345" not in text
    assert "81559" in text


def test_the_fleet_host_page_and_its_json_are_shown_without_processes(
    fake_nvml: ModuleType, admin_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    recorder = Recorder(
        GPUManager(), host="node-a", interval=10, retention_s=None, buffer_ticks=10, processes=True
    )
    recorder.tick(int(time.time()) // 10 * 10)
    path = "/api/gpu/fleet/node-a/"
    assert admin_client.get(f"{path}?format=json").json()["processes"]["count"] == 6

    with override_settings(GPU_MONITOR=BROKEN):
        page = admin_client.get(path, HTTP_ACCEPT="text/html")
        body = admin_client.get(path, HTTP_ACCEPT="application/json")

    assert page.status_code == 200 and body.status_code == 200
    assert 'data-field="processes"' not in page.content.decode()
    assert "11345" not in page.content.decode()
    assert body.json()["processes"] is None and body.json()["count"] == 2
    assert failures_logged(caplog) == [f"A permission class failed on {path}"] * 2
