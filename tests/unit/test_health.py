"""The django-health-check plugin, against the real django-health-check package."""

from __future__ import annotations

import asyncio
import json
import logging
from types import ModuleType

import pytest
from django.test import RequestFactory
from health_check.views import HealthCheckView

from gpu_monitor.health import GPUHealthCheck


def run(check: GPUHealthCheck) -> str | None:
    result = asyncio.run(check.get_result())
    return None if result.error is None else str(result.error)


def test_healthy_with_gpus(fake_nvml: ModuleType) -> None:
    assert run(GPUHealthCheck()) is None


def test_unhealthy_without_nvml(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    assert run(GPUHealthCheck()) == "Unavailable: NVML is not available: Driver Not Loaded"


def test_unhealthy_with_a_lost_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    assert run(GPUHealthCheck()) == "Unavailable: GPU 1: GPU is lost"


def test_minimum_gpu_count(fake_nvml: ModuleType) -> None:
    assert run(GPUHealthCheck(min_gpu_count=2)) is None
    assert run(GPUHealthCheck(min_gpu_count=3)) == (
        "Unavailable: 2 GPU(s) found, at least 3 expected"
    )


def test_maximum_temperature(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].temperature = 91

    assert run(GPUHealthCheck(max_temperature_c=91)) is None
    assert run(GPUHealthCheck(max_temperature_c=90)) == ("Unavailable: GPU 1 at 91 C (limit 90 C)")


@pytest.mark.parametrize(("scenario", "status"), [("healthy", 200), ("lost", 500)])
def test_through_health_check_view(fake_nvml: ModuleType, scenario: str, status: int) -> None:
    fake_nvml.configure(gpus=2, scenario=scenario)
    view = HealthCheckView.as_view(
        checks=[("gpu_monitor.health.GPUHealthCheck", {"min_gpu_count": 2})]
    )

    response = asyncio.run(view(RequestFactory().get("/health/?format=json")))

    assert response.status_code == status
    body = json.loads(response.content)
    ((label, result),) = body.items()
    assert label.startswith("GPUHealthCheck(min_gpu_count=2")
    assert (result == "OK") is (status == 200)


def test_repeated_failure_logged_once_by_gpu_monitor(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """django-health-check logs every failing probe; our own logger says it once."""
    fake_nvml.configure(gpus=2, scenario="lost")
    caplog.set_level(logging.DEBUG, logger="gpu_monitor")
    for _ in range(3):
        assert run(GPUHealthCheck()) == "Unavailable: GPU 1: GPU is lost"

    ours = [r for r in caplog.records if r.name.startswith("gpu_monitor")]
    loud = [r for r in ours if r.levelno >= logging.WARNING]
    assert [r.levelno for r in loud] == [logging.ERROR]
    assert "GPU is lost" in loud[0].getMessage()
    assert sum("GPU is lost" in r.getMessage() for r in ours) == 3  # then at DEBUG
