"""System checks, by the ids they return."""

from __future__ import annotations

import io
from types import ModuleType

from django.core.management import call_command

from gpu_monitor.checks import check_nvml


def test_w001_when_nvml_unavailable(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    messages = check_nvml()

    assert [m.id for m in messages] == ["gpu_monitor.W001"]
    assert "Driver Not Loaded" in messages[0].msg
    assert "/dev/nvidia" in (messages[0].hint or "")


def test_no_warning_when_nvml_available(fake_nvml: ModuleType) -> None:
    assert check_nvml() == []


def test_check_command_shows_w001(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    err = io.StringIO()

    call_command("check", stderr=err, stdout=io.StringIO())

    assert "gpu_monitor.W001" in err.getvalue()


def test_check_command_clean_with_gpus(fake_nvml: ModuleType) -> None:
    out = io.StringIO()
    call_command("check", stdout=out, stderr=io.StringIO())

    assert "no issues" in out.getvalue()
