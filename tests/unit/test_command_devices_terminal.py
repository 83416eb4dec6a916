"""gpu_devices in a terminal: the table fits the terminal's width (a long GPU name is cut,
numbers never), a name's control characters are escaped, --wide's help names the columns
it adds, and without NVML the reason is said once on stderr."""

from __future__ import annotations

import io
from types import ModuleType

import pytest
from django.core.management import call_command

from gpu_monitor import terminal
from gpu_monitor.management.commands import gpu_devices
from tests.unit.test_command import run_process


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_devices", *args, stdout=out, stderr=io.StringIO(), no_color=True)
    return out.getvalue()


def test_a_long_gpu_name_is_cut_to_fit_the_terminal(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.STATE.gpus[0].name = "NVIDIA " + "H" * 200
    monkeypatch.setenv("COLUMNS", "70")

    lines = run().splitlines()

    assert max(map(terminal.width, lines)) <= 70
    assert terminal.ELLIPSIS in lines[2] and "MiB" in lines[2] and lines[2].endswith("OK")


def test_a_gpu_name_with_control_characters_is_escaped(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].name = "evil\x1b[2J\nname"

    printed = run()

    assert "\x1b" not in printed
    assert "evil\\x1b[2J\\nname" in printed.splitlines()[2]


def test_wide_help_names_every_column_it_adds() -> None:
    text = " ".join(
        gpu_devices.Command().create_parser("manage.py", "gpu_devices").format_help().split()
    )
    wide = text[text.index("--wide ") : text.index("-p, --processes")]

    added = [c for c in gpu_devices.WIDE_COLUMNS if c not in gpu_devices.COLUMNS]
    assert len(added) == 11
    assert all(column in wide for column in added), wide


def test_without_nvml_the_reason_is_said_once_on_stderr() -> None:
    result = run_process(scenario="no_nvml")

    assert result.returncode == 1
    assert result.stderr.count("NVML Shared Library Not Found") == 1
    assert result.stderr.startswith("CommandError: No NVIDIA GPU available: ")
