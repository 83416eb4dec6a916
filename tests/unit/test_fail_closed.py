"""A GPU_MONITOR the checks reject closes every GPU endpoint (JSON 503), never opens it;
no input reaches a 500."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.test import Client, override_settings

from gpu_monitor import api

ROOT = Path(__file__).resolve().parents[2]
LOCKED = ["rest_framework.permissions.IsAuthenticated"]
# Each one was seen to serve live GPU data to anonymous users, or to answer 500.
MISCONFIGURATIONS = {
    "a list, not a dict": LOCKED,
    "a typo in a key": {"PERMISSION_CLASS": LOCKED},
    "an empty string": {"PERMISSION_CLASSES": ""},
    "a string, not a list": {"PERMISSION_CLASSES": "rest_framework.permissions.IsAuthenticated"},
    "None as the setting": None,
    "not a permission class": {"PERMISSION_CLASSES": ["builtins.object"]},
    "not an authentication class": {"AUTHENTICATION_CLASSES": ["builtins.dict"]},
    "not a throttle class": {"THROTTLE_CLASSES": ["rest_framework.permissions.IsAdminUser"]},
    "a function, not a class": {"PERMISSION_CLASSES": ["os.getcwd"]},
    "a module attribute that is no callable": {"PERMISSION_CLASSES": ["os.sep"]},
    "an unimportable path": {"PERMISSION_CLASSES": ["nowhere.Nope"]},
    "a class list of numbers": {"AUTHENTICATION_CLASSES": [42]},
}
ENDPOINTS = [
    "/api/gpu/devices",
    "/api/gpu/devices/0",
    "/api/gpu/devices/GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "/api/gpu/devices/0/processes",
    "/api/gpu/processes",
    "/api/gpu/history",
    "/api/gpu/events",
    "/api/gpu/driver",
    "/api/gpu/status",
    "/api/gpu/metrics",
    "/api/gpu/dashboard/",
    "/api/gpu/no/such/path",
]


@pytest.mark.parametrize("setting", MISCONFIGURATIONS.values(), ids=MISCONFIGURATIONS.keys())
@pytest.mark.parametrize("path", ENDPOINTS)
def test_misconfiguration_is_json_503_on_every_endpoint(
    fake_nvml: ModuleType, client: Client, db: None, setting: object, path: str
) -> None:
    with override_settings(GPU_MONITOR=setting, DEBUG=False):
        response = client.get(path, HTTP_ACCEPT="application/json")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    detail = response.json()["detail"]
    assert detail.startswith("GPU_MONITOR is misconfigured: ")
    assert detail.endswith("; run manage.py check")
    assert b"NVIDIA" not in response.content and b"81559" not in response.content


@pytest.mark.parametrize(
    ("setting", "what"),
    [
        (LOCKED, "GPU_MONITOR must be a dict, not list"),
        ({"PERMISSION_CLASS": LOCKED}, "GPU_MONITOR has an unknown key 'PERMISSION_CLASS'"),
        (
            {"PERMISSION_CLASSES": ""},
            "GPU_MONITOR['PERMISSION_CLASSES'] must be a list of dotted paths, not a str",
        ),
        (
            {"PERMISSION_CLASSES": ["builtins.object"]},
            "GPU_MONITOR['PERMISSION_CLASSES'] names 'builtins.object', which is not a "
            "permission class: it has no has_permission() method",
        ),
    ],
)
def test_detail_says_what_is_wrong(
    fake_nvml: ModuleType, client: Client, setting: object, what: str
) -> None:
    with override_settings(GPU_MONITOR=setting):
        response = client.get("/api/gpu/devices")

    assert response.json() == {
        "detail": f"GPU_MONITOR is misconfigured: {what}; run manage.py check"
    }


def test_metrics_error_is_plain_text_for_prometheus(fake_nvml: ModuleType, client: Client) -> None:
    with override_settings(GPU_MONITOR=LOCKED):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode().startswith("GPU_MONITOR is misconfigured: ")


def test_dashboard_error_is_a_short_page_for_a_browser(
    fake_nvml: ModuleType, client: Client
) -> None:
    with override_settings(GPU_MONITOR=LOCKED):
        response = client.get("/api/gpu/dashboard/", HTTP_ACCEPT="text/html,*/*;q=0.8")

    html = response.content.decode()
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert 'Error 503: <span id="error-detail">GPU_MONITOR is misconfigured: ' in html
    assert "NVIDIA H100" not in html and 'class="card' not in html


def test_dashboard_permission_error_page_says_why(fake_nvml: ModuleType, client: Client) -> None:
    with override_settings(
        GPU_MONITOR={
            "PERMISSION_CLASSES": LOCKED,
            "AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
        }
    ):
        response = client.get("/api/gpu/dashboard/")

    assert response.status_code == 403
    assert "Error 403: " in response.content.decode()
    assert "Authentication credentials were not provided." in response.content.decode()


def test_misconfiguration_logged_once_per_change(
    fake_nvml: ModuleType, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gpu_monitor.api")
    api._logged_misconfiguration = None
    with override_settings(GPU_MONITOR=LOCKED):
        for _ in range(3):
            client.get("/api/gpu/devices")
    with override_settings(GPU_MONITOR={"PERMISSION_CLASS": LOCKED}):
        client.get("/api/gpu/devices")
    client.get("/api/gpu/devices")  # fixed
    with override_settings(GPU_MONITOR=LOCKED):
        client.get("/api/gpu/devices")

    errors = [
        r.getMessage()
        for r in caplog.records
        if r.name == "gpu_monitor.api" and r.levelno == logging.ERROR
    ]
    assert len(errors) == 3
    assert "must be a dict" in errors[0] and "unknown key" in errors[1]
    assert "must be a dict" in errors[2]


def test_valid_locked_setting_still_works(fake_nvml: ModuleType, client: Client) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": LOCKED}):
        assert client.get("/api/gpu/devices").status_code == 403


def test_composed_permission_is_accepted(fake_nvml: ModuleType, client: Client) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": ["tests.throttles.AuthOrStaff"]}):
        assert client.get("/api/gpu/devices").status_code == 403


# -- no input reaches a 500 -----------------------------------------------------------

LONG_DIGITS = "9" * 4301  # past Python's int() digit limit (4300)


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path",
    [
        f"/api/gpu/devices/{LONG_DIGITS}",
        f"/api/gpu/devices/{'1' * 10}",
        f"/api/gpu/devices/{'0' * 5000}7",
        f"/api/gpu/devices/GPU-{'a' * 5000}",
        f"/api/gpu/devices/{'x' * 10000}",
    ],
)
def test_any_index_is_json_404(
    fake_nvml: ModuleType, client: Client, debug: bool, path: str
) -> None:
    with override_settings(DEBUG=debug):
        response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert len(response.json()["detail"]) < 200


@pytest.mark.parametrize(
    ("interval", "expected"),
    [(LONG_DIGITS, 3600), ("9" * 10, 3600), ("0" * 5000, 1), ("x" * 5000, 5), ("-3", 5)],
)
def test_any_dashboard_interval_is_clamped_or_default(
    fake_nvml: ModuleType, client: Client, interval: str, expected: int
) -> None:
    response = client.get("/api/gpu/dashboard/", {"interval": interval})

    assert response.status_code == 200
    assert f"refresh every {expected} s" in response.content.decode()


def test_leading_zeros_are_the_same_index(fake_nvml: ModuleType, client: Client) -> None:
    response = client.get(f"/api/gpu/devices/{'0' * 5000}1")

    assert response.status_code == 200
    assert response.json()["index"] == 1


def test_options_on_dashboard_is_no_page(fake_nvml: ModuleType, client: Client) -> None:
    response = client.options("/api/gpu/dashboard/")

    assert response.status_code == 200
    assert response.content == b""
    assert "GET" in response["Allow"]


def test_watch_json_into_a_closed_pipe_ends_quietly() -> None:
    """``gpu_devices --watch 1 --json | head -1``: status 0 and nothing on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "fakes"), "FAKE_NVML_GPUS": "8"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with subprocess.Popen(
        [sys.executable, "manage.py", "gpu_devices", "--watch", "0.05", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # what `head -1` does after its line
        returncode = process.wait(timeout=30)
        stderr = process.stderr.read().decode()

    assert first.startswith(b'{"devices":[{"index":0')
    assert returncode == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
