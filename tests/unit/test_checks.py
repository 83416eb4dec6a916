"""System checks, by the ids they return."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import ModuleType

import pytest
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from gpu_monitor import checks
from gpu_monitor.checks import check_anonymous_access, check_nvml, check_settings

ROOT = Path(__file__).resolve().parents[2]


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


def ids(messages: list[CheckMessage]) -> list[str]:
    return [m.id or "" for m in messages]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({}, []),
        ({"PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}, []),
        ({"PERMISSION_CLASES": []}, ["gpu_monitor.E001"]),
        ("not a dict", ["gpu_monitor.E002"]),
        ({"THROTTLE_CLASSES": "rest_framework.throttling.AnonRateThrottle"}, ["gpu_monitor.E002"]),
        ({"AUTHENTICATION_CLASSES": [42]}, ["gpu_monitor.E002"]),
        ({"PERMISSION_CLASSES": ["rest_framework.permissions.Nope"]}, ["gpu_monitor.E003"]),
        ({"PERMISSION_CLASSES": ["builtins.object"]}, ["gpu_monitor.E004"]),
        ({"AUTHENTICATION_CLASSES": ["builtins.dict"]}, ["gpu_monitor.E004"]),
        ({"PERMISSION_CLASSES": ["os.sep"]}, ["gpu_monitor.E004"]),
        ({"PERMISSION_CLASSES": ["tests.throttles.AuthOrStaff"]}, []),
        ({"THROTTLE_CLASSES": ["tests.throttles.ThreePerMinute"]}, []),
        (
            {"PERMISSION_CLASSES": ["nowhere.Nope"], "X": 1},
            ["gpu_monitor.E001", "gpu_monitor.E003"],
        ),
    ],
)
def test_settings_checks(setting: object, expected: list[str]) -> None:
    with override_settings(GPU_MONITOR=setting):
        assert ids(check_settings()) == expected


def test_unknown_key_hint_suggests_the_right_one() -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASES": []}):
        (error,) = check_settings()

    assert error.hint is not None and "Did you mean 'PERMISSION_CLASSES'?" in error.hint


def test_bad_setting_fails_manage_py_check(fake_nvml: ModuleType) -> None:
    with override_settings(GPU_MONITOR={"PERMISSION_CLASSES": ["nowhere.Nope"]}):
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(SystemCheckError, match=r"gpu_monitor\.E003"):
            call_command("check", stdout=out, stderr=err)


@pytest.mark.parametrize(
    ("debug", "setting", "expected"),
    [
        (False, {}, ["gpu_monitor.W002"]),  # DRF's default: AllowAny
        (True, {}, []),
        (False, {"PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}, []),
        (False, {"PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"]}, []),
        (
            False,
            {"PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]},
            ["gpu_monitor.W002"],
        ),
        (False, {"PERMISSION_CLASSES": ["nowhere.Nope"]}, []),  # E003 says why
    ],
)
def test_w002_anonymous_access_deploy_check(
    debug: bool, setting: object, expected: list[str]
) -> None:
    with override_settings(DEBUG=debug, GPU_MONITOR=setting):
        messages = check_anonymous_access()

    assert ids(messages) == expected
    if expected:
        assert "driver and CUDA versions" in (messages[0].hint or "")


def test_w002_shown_by_check_deploy_only(fake_nvml: ModuleType, db: None) -> None:
    plain, deploy = io.StringIO(), io.StringIO()
    # Django 6.1's deploy check refuses the test runner's in-memory mailer (mail.E001).
    with override_settings(DEBUG=False, SILENCED_SYSTEM_CHECKS=["mail.E001"]):
        call_command("check", stdout=io.StringIO(), stderr=plain)
        call_command("check", "--deploy", stdout=io.StringIO(), stderr=deploy)

    assert "gpu_monitor.W002" not in plain.getvalue()
    assert "gpu_monitor.W002" in deploy.getvalue()


def test_every_check_id_is_listed_where_the_docstring_says() -> None:
    """checks.py names the page whose table lists every id the code can return."""
    used = {
        found
        for path in (ROOT / "gpu_monitor").rglob("*.py")
        for found in re.findall(r"\"(gpu_monitor\.[EW]\d{3})\"", path.read_text())
    }
    (page,) = re.findall(r"docs/\w+\.md", checks.__doc__ or "")
    rows = re.findall(r"^\| `(gpu_monitor\.[EW]\d{3})` \|", (ROOT / page).read_text(), re.M)

    assert len(used) == 7  # E001 to E005, W001, W002
    assert set(re.findall(r"gpu_monitor\.[EW]\d{3}", checks.__doc__ or "")) == used
    assert sorted(rows) == sorted(used)
