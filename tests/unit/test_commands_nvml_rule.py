"""Which processes initialise NVML at start and check gpu_monitor.W001
(gpu_monitor.commands.nvml_at_start): servers, ``check`` and scripts do; the commands
that read the database (``migrate``, ``gpu_fleet``, ``gpu_usage``,
``gpu_history_maintain``, their ``--help`` and ``help X``) never do, and say nothing of
NVML on stderr on a host without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gpu_monitor import commands
from gpu_monitor.checks import check_nvml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["gunicorn", "example_project.wsgi"], {}, True),
        (["pytest", "tests/unit"], {}, True),
        (["manage.py"], {}, True),  # no command: manage.py prints its help
        (["manage.py", "check"], {}, True),
        (["manage.py", "check", "--deploy"], {}, True),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True),  # the reloader's child
        (["manage.py", "runserver"], {}, False),  # the reloader's parent serves nothing
        (["manage.py", "runserver", "--noreload"], {}, True),
        (["manage.py", "testserver", "x.json"], {}, True),
        (["manage.py", "migrate"], {}, False),
        (["manage.py", "collectstatic", "--noinput"], {}, False),
        (["manage.py", "gpu_fleet"], {}, False),
        (["manage.py", "gpu_usage", "--help"], {}, False),
        (["manage.py", "gpu_history_maintain"], {}, False),
        (["manage.py", "help", "gpu_fleet"], {}, False),
        (["manage.py", "help", "check"], {}, True),
        (["manage.py", "gpu_devices"], {}, False),  # initialises it under its verbosity
        (["manage.py", "gpu_record"], {}, False),
    ],
)
def test_nvml_at_start(argv: list[str], environ: dict[str, str], expected: bool) -> None:
    assert commands.nvml_at_start(argv, environ) is expected


def test_command_of_reads_help_of_a_command() -> None:
    assert commands.command_of(["manage.py", "help", "gpu_usage"]) == "gpu_usage"
    assert commands.command_of(["manage.py", "help"]) == "help"
    assert commands.command_of(["manage.py", "--version"]) == "help"
    assert not commands.nvml_at_start(["manage.py", "help"], {})
    assert commands.command_of(["django-admin", "gpu_fleet", "--json"]) == "gpu_fleet"
    assert commands.command_of(["gunicorn", "example_project.wsgi"]) is None


def test_w001_is_not_checked_where_nvml_is_not_used(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    monkeypatch.setattr(sys, "argv", ["manage.py", "migrate"])

    assert check_nvml() == []
    assert fake_nvml.CALLS["nvmlInit"] == 0

    monkeypatch.setattr(sys, "argv", ["manage.py", "check"])
    assert [m.id for m in check_nvml()] == ["gpu_monitor.W001"]


def manage(
    *argv: str, tmp_path: Path, settings: str = "example_project.settings"
) -> tuple[subprocess.CompletedProcess[str], str]:
    """``argv`` as manage.py runs it, in a process of its own on the fake pynvml made to
    fail its init (the example project's LOGGING: gpu_monitor at INFO on stderr), on an
    in-memory database migrated first in the same process; and how often nvmlInit was
    called."""
    calls = tmp_path / "calls"
    script = (
        "import atexit, sys; import pynvml; "
        f"atexit.register(lambda: open({str(calls)!r}, 'w').write("
        "str(pynvml.CALLS['nvmlInit']))); "
        f"sys.argv = ['manage.py', *{list(argv)!r}]; "
        "import django; django.setup(); "
        "from django.core.management import call_command, execute_from_command_line; "
        "call_command('migrate', verbosity=0); "
        "execute_from_command_line(sys.argv)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": settings,
        "DJANGO_SQLITE_PATH": ":memory:",
        "FAKE_NVML_SCENARIO": "no_nvml",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, calls.read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["gpu_fleet", "--help"],
        ["gpu_usage", "--help"],
        ["gpu_history_maintain", "--help"],
        ["gpu_fleet", "--json"],
        ["gpu_usage", "--since", "30d"],
        ["gpu_history_maintain", "--dry-run"],
    ],
)
def test_a_database_command_never_initialises_nvml(argv: list[str], tmp_path: Path) -> None:
    result, calls = manage(*argv, tmp_path=tmp_path)

    assert (result.stderr, calls) == ("", "0")


def test_without_logging_a_database_command_says_nothing_of_nvml(tmp_path: Path) -> None:
    # tests.settings has no LOGGING: Python's last-resort handler would print a WARNING.
    result, calls = manage("gpu_usage", "--help", tmp_path=tmp_path, settings="tests.settings")

    assert (result.returncode, result.stderr, calls) == (0, "", "0")


@pytest.mark.parametrize("argv", [["help", "gpu_fleet"], ["migrate"]])
def test_help_of_a_command_and_migrate_never_initialise_nvml(
    argv: list[str], tmp_path: Path
) -> None:
    result, calls = manage(*argv, tmp_path=tmp_path)

    assert "NVML" not in result.stderr
    assert calls == "0"


def test_check_still_warns_once(tmp_path: Path) -> None:
    result, calls = manage("check", tmp_path=tmp_path)

    assert result.stderr.count("gpu_monitor.W001") == 1
    assert calls == "1"
