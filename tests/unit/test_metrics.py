"""GET api/gpu/metrics: Prometheus exposition, checked by prometheus_client and promtool."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import prometheus_client
import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

GPU0 = {
    "gpu": "0",
    "uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "name": "NVIDIA H100 80GB HBM3",
}


def scrape(client: Client) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/api/gpu/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_metrics_of_healthy_gpus(fake_nvml: ModuleType, client: Client) -> None:
    samples = scrape(client)

    assert samples["gpu_monitor_up"] == [({}, 1.0)]
    assert samples["gpu_monitor_devices"] == [({}, 2.0)]
    assert samples["gpu_monitor_driver_info"] == [
        (
            {
                "driver_version": "580.159.04",
                "cuda_driver_version": "13.0",
                "nvml_version": "13.580.159.04",
            },
            1.0,
        )
    ]
    first = {name: values[0] for name, values in samples.items() if values[0][0].get("gpu") == "0"}
    assert first["gpu_monitor_device_available"] == (GPU0, 1.0)
    assert first["gpu_monitor_memory_total_bytes"] == (GPU0, 81559 * 1048576)
    assert first["gpu_monitor_memory_used_bytes"] == (GPU0, 0.0)
    assert first["gpu_monitor_memory_free_bytes"] == (GPU0, 81079 * 1048576)
    assert first["gpu_monitor_utilization_ratio"] == (GPU0, 0.0)
    assert first["gpu_monitor_temperature_celsius"] == (GPU0, 34.0)
    assert first["gpu_monitor_power_draw_watts"] == (GPU0, 71.07)
    assert first["gpu_monitor_power_limit_watts"] == (GPU0, 700.0)
    assert first["gpu_monitor_sm_clock_hertz"] == (GPU0, 345e6)
    assert first["gpu_monitor_memory_clock_hertz"] == (GPU0, 2619e6)
    assert first["gpu_monitor_performance_state"] == (GPU0, 0.0)
    assert len(samples["gpu_monitor_temperature_celsius"]) == 2


def test_ratios_are_fractions(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[0].utilization_gpu = 87
    fake_nvml.STATE.gpus[0].utilization_memory = 42

    samples = scrape(client)

    assert samples["gpu_monitor_utilization_ratio"][0] == (GPU0, 0.87)
    assert samples["gpu_monitor_memory_utilization_ratio"][0] == (GPU0, 0.42)


def test_unsupported_field_has_no_series(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[1].errors["temperature"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    samples = scrape(client)

    assert "gpu_monitor_fan_speed_ratio" not in samples  # the H100 has no fan: not 0
    assert [labels["gpu"] for labels, _ in samples["gpu_monitor_temperature_celsius"]] == ["0"]


def test_lost_gpu_is_unavailable_with_no_other_series(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    samples = scrape(client)

    lost = {"gpu": "1", "uuid": "", "name": "Unknown GPU"}
    assert (lost, 0.0) in samples["gpu_monitor_device_available"]
    assert all(
        labels.get("gpu") != "1"
        for name, values in samples.items()
        if name != "gpu_monitor_device_available"
        for labels, _ in values
    )


def test_without_nvml_up_is_0(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    samples = scrape(client)

    assert samples["gpu_monitor_up"] == [({}, 0.0)]
    assert samples["gpu_monitor_devices"] == [({}, 0.0)]
    assert "gpu_monitor_driver_info" not in samples
    assert "gpu_monitor_device_available" not in samples


@pytest.mark.parametrize("scenario", ["healthy", "lost", "no_nvml"])
def test_promtool_finds_nothing_wrong(fake_nvml: ModuleType, client: Client, scenario: str) -> None:
    fake_nvml.configure(gpus=2, scenario=scenario)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"

    body = client.get("/api/gpu/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b""


def test_nothing_is_registered_globally(fake_nvml: ModuleType, client: Client) -> None:
    scrape(client)

    names = {
        sample.name for family in prometheus_client.REGISTRY.collect() for sample in family.samples
    }
    assert not any(name.startswith("gpu_monitor") for name in names)


def test_plain_text_accept_is_served(fake_nvml: ModuleType, client: Client) -> None:
    prometheus_accept = (
        "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    for accept in ("text/plain", prometheus_accept):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response.content.startswith(b"# HELP gpu_monitor_up")


def test_without_prometheus_client_is_501(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "gpu_monitor.metrics", raising=False)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)

    response = client.get("/api/gpu/metrics", HTTP_ACCEPT="application/json")
    text = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 501
    assert response.json() == {
        "detail": "Prometheus metrics need the prometheus_client package: "
        "pip install gpu-monitor[prometheus]"
    }
    assert text.status_code == 501
    assert text.content.startswith(b"Prometheus metrics need the prometheus_client package")


def test_metrics_follow_the_permission_settings(fake_nvml: ModuleType, client: Client) -> None:
    locked = {
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    }
    with override_settings(GPU_MONITOR=locked):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 401
    assert response.content == b"Authentication credentials were not provided.\n"


@pytest.mark.django_db
def test_prometheus_with_basic_auth_gets_metrics(fake_nvml: ModuleType, client: Client) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("prometheus", password="scrape-pass")
    locked = {
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    }
    with override_settings(GPU_MONITOR=locked):
        response = client.get(
            "/api/gpu/metrics", HTTP_AUTHORIZATION="Basic cHJvbWV0aGV1czpzY3JhcGUtcGFzcw=="
        )

    assert response.status_code == 200


def test_example_alert_rules_are_valid() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    rules = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"

    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert b"SUCCESS: 4 rules found" in result.stdout


def test_a_scrape_counts_gpus_once(fake_nvml: ModuleType, client: Client) -> None:
    scrape(client)
    fake_nvml.CALLS.clear()

    scrape(client)

    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetHandleByIndex"] == 2
