"""``manage.py gpu_devices`` against the fake pynvml."""

from __future__ import annotations

import getpass
import io
import json
import logging
import os
import shlex
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import psutil
import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from gpu_monitor import host, rules, terminal
from gpu_monitor.management.commands import gpu_devices
from gpu_monitor.manager import get_manager

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def between_frames(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[float], object] = lambda seconds: None
) -> None:
    """``--watch`` does ``action(seconds)`` between two frames instead of waiting."""
    monkeypatch.setattr(terminal.Watch, "pause", lambda watch, seconds: bool(action(seconds)))


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("gpu_devices", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_process(
    *args: str, gpus: int = 2, scenario: str = "healthy", settings: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``manage.py gpu_devices`` in a real process against the fake pynvml, with the
    example project's settings and LOGGING unless ``settings`` names others."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "tests" / "fakes"),
        "FAKE_NVML_GPUS": str(gpus),
        "FAKE_NVML_SCENARIO": scenario,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings is not None:
        env["DJANGO_SETTINGS_MODULE"] = settings
    return subprocess.run(
        [sys.executable, "manage.py", "gpu_devices", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_table_has_header_and_aligned_rows(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3)
    fake_nvml.STATE.gpus[1].name = "Tesla T4"
    fake_nvml.STATE.gpus[2].name = "NVIDIA A100-SXM4-80GB with a very long marketing name"

    out, _ = run()
    lines = out.splitlines()

    assert lines[0] == "Driver 580.159.04   CUDA 13.0   3 GPU(s)"
    assert lines[1].split() == ["GPU", "Name", "Memory", "Util", "Temp", "State"]
    assert lines[2].strip().startswith("0  NVIDIA H100 80GB HBM3  ")
    assert "0 / 81559 MiB (0%)" in lines[2]
    # Every column starts at the same offset whatever the name length.
    for marker in ("MiB (0%)", "34 C", "OK"):
        assert len({line.index(marker) for line in lines[2:]}) == 1
    assert lines[3].index("Tesla T4") == lines[2].index("NVIDIA H100")


def test_null_fields_print_na(fake_nvml: ModuleType) -> None:
    gpu = fake_nvml.STATE.gpus[0]
    gpu.errors["temperature"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    gpu.errors["utilization"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    gpu.errors["memory"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    row = run("--index", "0")[0].splitlines()[2]

    assert row.split() == ["0", "NVIDIA", "H100", "80GB", "HBM3", "N/A", "N/A", "N/A", "OK"]


def test_wide_table_adds_fleet_columns(fake_nvml: ModuleType) -> None:
    lines = run("--wide")[0].splitlines()

    for header in ("Mem util", "Power", "Fan", "Perf", "SM clock", "Mem clock", "Bus ID", "UUID"):
        assert header in lines[1]
    assert "71.07 / 700.00 W" in lines[2]
    assert "345 MHz" in lines[2] and "2619 MHz" in lines[2] and " P0 " in lines[2]
    assert "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772" in lines[2]
    assert lines[2].index("00000000:00:06.0") == lines[3].index("00000000:01:06.0")
    fan_column = lines[1].index("Fan")
    assert lines[2][fan_column : fan_column + 3] == "N/A"


def test_wide_table_power_without_limit(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["power_limit"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    fake_nvml.STATE.gpus[1].errors["power_usage"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    lines = run("--wide")[0].splitlines()

    assert "71.07 W" in lines[2]
    assert "N/A / 700.00 W" in lines[3]


def test_unavailable_gpu_row_shows_its_error_and_exit_0(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    lines = run()[0].splitlines()

    assert "81559 MiB" in lines[2]
    assert lines[3].split() == ["1", "Unknown", "GPU", "unavailable:", "GPU", "is", "lost"]


def test_json_equals_the_api_document(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    out, _ = run("--json")

    assert out == client.get("/api/gpu/devices").content.decode() + "\n"
    assert json.loads(out)["count"] == 2


def test_index_restricts_output(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3)

    body = json.loads(run("--json", "--index", "2", "--index", "0")[0])
    table = run("--index", "1")[0].splitlines()

    assert [d["index"] for d in body["devices"]] == [0, 2]
    assert body["count"] == 2
    assert len(table) == 3 and table[2].lstrip().startswith("1  ")
    assert table[0].endswith("   1 of 3 GPU(s)")


def test_index_header_counts_the_selection_of_all(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=4)

    lines = run("--index", "1", "--index", "0", "--index", "1")[0].splitlines()

    assert lines[0] == "Driver 580.159.04   CUDA 13.0   2 of 4 GPU(s)"
    assert [line.split()[0] for line in lines[2:]] == ["0", "1"]  # index order, once each


def test_unknown_index_is_command_error(fake_nvml: ModuleType) -> None:
    with pytest.raises(CommandError, match=r"No GPU with index 5, 7: this machine has 2 GPU\(s\)"):
        run("--index", "5", "--index", "7")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--index", "-1"], "a GPU index is a non-negative integer, not '-1'"),
        (["--index", "x"], "a GPU index is a non-negative integer, not 'x'"),
        (["--watch", "0"], "must be a positive number of seconds, not '0'"),
        (["--watch", "-2"], "must be a positive number of seconds, not '-2'"),
        (["--watch", "soon"], "must be a positive number of seconds, not 'soon'"),
        (["--watch", "nan"], "must be a positive number of seconds, not 'nan'"),
        (["--watch", "1", "--count", "0"], "must be a positive whole number, not '0'"),
        (["--count", "3"], "--count N stops --watch after N refreshes: add --watch SECONDS"),
    ],
)
def test_bad_arguments_are_rejected(fake_nvml: ModuleType, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_watch_json_lines_with_count(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    temperatures = iter([40, 41, 42])

    def next_temperature(seconds: float) -> None:
        sleeps.append(seconds)
        fake_nvml.STATE.gpus[0].temperature = next(temperatures)

    between_frames(monkeypatch, next_temperature)

    out, _ = run("--json", "--watch", "2.5", "--count", "3")
    documents = [json.loads(line) for line in out.splitlines()]

    assert len(documents) == 3
    assert [d["devices"][0]["temperature_c"] for d in documents] == [34, 40, 41]
    assert sleeps == [2.5, 2.5]


def test_watch_table_outside_terminal_separates_frames(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    between_frames(monkeypatch)

    out, _ = run("--watch", "1", "--count", "2")

    assert out.count("Driver 580.159.04") == 2
    assert "\x1b" not in out


def test_watch_in_terminal_redraws_in_place(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    between_frames(monkeypatch)
    out = Terminal()
    call_command("gpu_devices", "--watch", "1", "--count", "2", "--no-color", stdout=out)

    assert out.getvalue().count(terminal.CLEAR_SCREEN) == 2


def test_ctrl_c_ends_watch_cleanly(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    between_frames(monkeypatch, interrupt)

    out, err = run("--json", "--watch", "1")

    assert len(out.splitlines()) == 2  # one document, then the newline after ^C
    assert err == ""


@pytest.mark.parametrize("args", [[], ["--json"]])
def test_without_nvml_exit_status_1(fake_nvml: ModuleType, args: list[str]) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED
    out = io.StringIO()

    with pytest.raises(CommandError, match="No NVIDIA GPU available: Driver Not Loaded") as info:
        call_command("gpu_devices", *args, stdout=out)

    assert info.value.returncode == 1
    if args:
        assert json.loads(out.getvalue()) == {"devices": [], "count": 0}
    else:
        assert out.getvalue() == ""


def test_no_color_output_has_no_escape_codes(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")
    fake_nvml.STATE.gpus[0].temperature = 95

    plain, _ = run("--no-color")
    coloured, _ = run("--force-color")

    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    strip = coloured
    for code in ("\x1b[31;1m", "\x1b[32;1m", "\x1b[33;1m", "\x1b[36;1m", "\x1b[0m"):
        strip = strip.replace(code, "")
    assert strip == plain


def test_high_values_are_highlighted(fake_nvml: ModuleType) -> None:
    gpu = fake_nvml.STATE.gpus[0]
    gpu.temperature, gpu.utilization_gpu, gpu.used_v2 = 85, 97, 80000 * 1024 * 1024

    row = run("--force-color", "--index", "0")[0].splitlines()[2]

    assert "\x1b[33;1m 97%\x1b[0m" in row  # padded to the "Util" header
    assert "\x1b[33;1m85 C\x1b[0m" in row
    assert "\x1b[33;1m80000 / 81559 MiB (98%)\x1b[0m" in row


def test_driver_failure_prints_na_header(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> int:
        raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(fake_nvml, "nvmlSystemGetCudaDriverVersion", broken)

    assert run()[0].splitlines()[0] == "Driver N/A   CUDA N/A   2 GPU(s)"


def test_real_process_prints_json() -> None:
    result = run_process("--json")

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["count"] == 2
    assert body["devices"][1]["total_memory_mb"] == 81559


def test_count_without_watch_exits_2_with_usage() -> None:
    result = run_process("--count", "3")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: manage.py gpu_devices")
    assert "error: --count N stops --watch after N refreshes" in result.stderr


# -- stderr: a clean run says nothing there ----------------------------------------------


def test_clean_run_prints_nothing_on_stderr() -> None:
    # The example project logs gpu_monitor at INFO on the console (stderr).
    from example_project import settings as example

    assert example.LOGGING["loggers"]["gpu_monitor"]["level"] == "INFO"

    result = run_process("-p", "--wide")

    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("Driver 580.159.04   CUDA 13.0   2 GPU(s)\n")


def test_failures_the_table_shows_are_not_repeated_on_stderr() -> None:
    result = run_process("-p", scenario="lost")

    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[-2:] == [
        "  1  Unknown GPU            unavailable: GPU is lost",
        "     processes unavailable: GPU is lost",
    ]


# -- --verbosity: 0 nothing, 1 warnings and errors, 2 INFO, 3 DEBUG --------------------

NO_NVML = "NVML Shared Library Not Found"
NO_GPU = f"CommandError: No NVIDIA GPU available: {NO_NVML}\n"  # the command's own error
INITIALIZED = "NVML initialized successfully. Found 2 GPU(s)\n"


@pytest.mark.parametrize(
    ("settings", "scenario", "verbosity", "stderr"),
    [
        # The example project: LOGGING sends gpu_monitor to the console at INFO (-v 1
        # on a healthy machine: test_clean_run_prints_nothing_on_stderr).
        (None, "no_nvml", "0", NO_GPU),
        (None, "lost", "0", ""),
        (None, "no_nvml", "1", NO_GPU),  # the reason once: the error says it
        (None, "healthy", "2", INITIALIZED),
        (
            None,
            "lost",
            "3",
            INITIALIZED
            + "Error querying GPU device 1: GPU is lost\n"
            + "Error listing the processes of GPU 1: GPU is lost\n",
        ),
        # No LOGGING at all: INFO through the command's own handler, only from -v 2.
        ("tests.settings", "healthy", "1", ""),
        ("tests.settings", "healthy", "2", INITIALIZED),
    ],
)
def test_verbosity_sets_what_the_loggers_write_on_stderr(
    settings: str | None, scenario: str, verbosity: str, stderr: str
) -> None:
    result = run_process("-p", "-v", verbosity, scenario=scenario, settings=settings)

    assert result.stderr == stderr
    assert result.returncode == (1 if scenario == "no_nvml" else 0)
    assert bool(result.stdout) is (scenario != "no_nvml")  # the table, whatever -v says


@pytest.mark.parametrize(("verbosity", "said"), [(0, False), (1, False), (2, True), (3, True)])
def test_the_command_initialises_nvml_under_its_verbosity(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, verbosity: int, said: bool
) -> None:
    caplog.set_level(logging.DEBUG, logger="gpu_monitor")  # as loud as LOGGING can be

    call_command("gpu_devices", verbosity=verbosity, stdout=io.StringIO())

    initialized = (
        "gpu_monitor.manager.session",
        logging.INFO,
        "NVML initialized successfully. Found 2 GPU(s)",
    )
    assert (initialized in caplog.record_tuples) is said
    assert logging.getLogger("gpu_monitor").level == logging.DEBUG  # restored


@pytest.mark.parametrize("args", [[], ["--json", "-p"]])
def test_failures_in_the_output_are_logged_at_debug_only_by_the_command(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, args: list[str]
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")
    get_manager()  # initialised (at INFO) before: only the command's failures are counted
    caplog.set_level(logging.DEBUG, logger="gpu_monitor")

    out, _ = run(*args, "--verbosity", "3")
    in_command = [(r.levelno, r.getMessage()) for r in caplog.records]
    caplog.clear()
    get_manager().get_devices()  # a server meeting the failure first still says it
    outside = [(r.levelno, r.getMessage()) for r in caplog.records]

    assert "GPU is lost" in out
    assert (logging.DEBUG, "Error querying GPU device 1: GPU is lost") in in_command
    assert max(level for level, _ in in_command) == logging.DEBUG
    assert outside == [(logging.ERROR, "Error querying GPU device 1: GPU is lost")]


def test_one_refresh_counts_gpus_once(fake_nvml: ModuleType) -> None:
    run("--json")
    fake_nvml.CALLS.clear()

    run("--json")

    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 1


# -- processes, MIG and health columns ------------------------------------------------


def test_processes_are_listed_under_their_gpu(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    fake_nvml.STATE.gpus[1].processes = [
        fake_nvml.FakeProcess(os.getpid(), 1200 * MIB),
        fake_nvml.FakeProcess(4242424, 300 * MIB),
    ]
    fake_nvml.STATE.gpus[1].samples = [fake_nvml.FakeSample(os.getpid(), 87, 4)]

    lines = run("--processes")[0].splitlines()

    assert lines[2].strip().startswith("0  NVIDIA H100")
    assert lines[3].strip().startswith("1  NVIDIA H100")
    header, mine, gone = lines[4:7]
    assert len(lines) == 7  # GPU 0 runs nothing: no header under it
    assert mine.startswith("     ") and gone.startswith("     ")
    me = psutil.Process()
    assert mine.split()[:4] == [str(os.getpid()), getpass.getuser(), me.name(), "1200"]
    assert mine.split()[5:7] == ["87%", "compute"]
    assert gone.split()[:3] == ["4242424", "N/A", "N/A"]
    assert gone.endswith("(the process ended after NVML listed it)")
    assert mine.index("MiB") == gone.index("MiB")  # aligned
    assert shlex.join(me.cmdline()) not in mine  # no command line without --full-command
    assert header.split() == ["PID", "User", "Name", "GPU", "memory", "SM", "Type"]


def test_process_header_is_aligned_with_the_rows(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    fake_nvml.STATE.gpus[0].processes = [
        fake_nvml.FakeProcess(os.getpid(), 1234567 * MIB),
        fake_nvml.FakeProcess(4242424, 3 * MIB),
    ]
    fake_nvml.STATE.gpus[0].samples = [fake_nvml.FakeSample(os.getpid(), 100, 4)]

    header, mine, gone = run("-p", "--full-command", "--index", "0")[0].splitlines()[3:6]

    assert header.startswith(gpu_devices.INDENT + "    PID  User")
    for row in (mine, gone):  # right-aligned numbers end under their header's end
        assert row[: header.index("PID") + 3].split()[-1].isdigit()
        assert row[: header.index("GPU memory") + 10].endswith(" MiB")
        assert row[: header.index("SM") + 2].endswith(("100%", "N/A"))
    # left-aligned text starts under its header
    assert mine[header.index("User") :].startswith(getpass.getuser() + " ")
    assert gone[header.index("User") :].startswith("N/A ")
    assert mine[header.index("Type") :].startswith("compute ")
    assert mine[header.index("Command") :] == shlex.join(psutil.Process().cmdline())


def test_no_process_header_over_a_message(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].errors["processes_compute"] = fake_nvml.NVML_ERROR_NO_PERMISSION

    lines = run("-p")[0].splitlines()

    assert not any("PID" in line for line in lines)


def test_full_command_shows_the_command_line(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    fake_nvml.STATE.gpus[0].processes = [fake_nvml.FakeProcess(os.getpid(), MIB)]

    out = run("-p", "--full-command", "--index", "0")[0]

    assert out.splitlines()[3].split()[-1] == "Command"
    assert out.splitlines()[4].endswith(shlex.join(psutil.Process().cmdline()))


def full_command_help() -> str:
    parser = gpu_devices.Command().create_parser("manage.py", "gpu_devices")
    (action,) = [a for a in parser._actions if "--full-command" in a.option_strings]
    return str(action.help)


@pytest.mark.parametrize("setting", [True, False])
def test_full_command_help_says_what_process_command_line_does(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, setting: bool
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    fake_nvml.STATE.gpus[0].processes = [fake_nvml.FakeProcess(os.getpid(), MIB)]
    command_line = shlex.join(psutil.Process().cmdline())

    with override_settings(GPU_MONITOR={"PROCESS_COMMAND_LINE": setting}):
        without_option = run("-p", "--index", "0")[0]
        with_option = run("-p", "--full-command", "--index", "0")[0]

    # What the help promises: off by default, on with the option whatever the setting,
    # and on without it when the setting is True.
    assert "default: off, and on when GPU_MONITOR['PROCESS_COMMAND_LINE'] is True" in (
        full_command_help()
    )
    assert "not this command" not in full_command_help()
    assert with_option.splitlines()[4].endswith(command_line)
    assert without_option.splitlines()[4].endswith(command_line) is setting
    assert ("Command" in without_option.splitlines()[3]) is setting


def test_processes_json_equals_the_api_document(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    fake_nvml.configure(gpus=2, scenario="load")
    fake_nvml.STATE.gpus[1].processes.append(fake_nvml.FakeProcess(os.getpid(), 9 * MIB))

    out, _ = run("--json", "--processes")
    with override_settings(
        GPU_MONITOR={"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    ):
        api = client.get("/api/gpu/processes").json()

    document = json.loads(out)
    for process in document["processes"] + api["processes"]:
        process.pop("host_memory_mb")  # RSS moves between two reads
    assert document == api
    assert document["count"] == 7


def test_processes_json_is_byte_identical(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")

    out, _ = run("--json", "-p")
    with override_settings(
        GPU_MONITOR={"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
    ):
        api = client.get("/api/gpu/processes").content.decode()

    assert out == api + "\n"


def test_processes_of_a_lost_gpu_say_why(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].errors["processes_compute"] = fake_nvml.NVML_ERROR_NO_PERMISSION

    lines = run("-p")[0].splitlines()

    assert lines[-1] == "     processes unavailable: Insufficient Permissions"


def test_processes_with_index_and_watch(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    between_frames(monkeypatch)
    fake_nvml.configure(gpus=2, scenario="load")

    out, _ = run("--json", "-p", "--index", "1", "--watch", "1", "--count", "2")
    documents = [json.loads(line) for line in out.splitlines()]

    assert len(documents) == 2
    assert {p["gpu_index"] for d in documents for p in d["processes"]} == {1}
    assert documents[0]["count"] == 3


def test_mig_devices_are_rows_under_their_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")

    lines = run()[0].splitlines()

    assert lines[2].split()[:3] == ["0", "NVIDIA", "H200"]
    migs = lines[3:8]
    assert [line.split()[:2] for line in migs] == [
        ["MIG", "2/0"],
        ["MIG", "2/1"],
        ["MIG", "3/0"],
        ["MIG", "9/0"],
        ["MIG", "10/0"],
    ]
    assert "16925 / 71424 MiB (24%)" in migs[0]
    assert migs[4].endswith("MIG-00000004-0000-0000-0000-000000000004")
    assert lines[8].split()[:2] == ["1", "NVIDIA"]


def test_wide_table_shows_ecc_remap_and_clock_events(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3)
    gpus = fake_nvml.STATE.gpus
    gpus[0].ecc_uncorrected_volatile, gpus[0].remapped_rows = 2, (0, 1, 1, 0)
    gpus[1].remapped_rows, gpus[1].clocks_event_reasons = (0, 0, 0, 1), 0x40 | 0x4
    gpus[2].errors.update(
        remapped_rows=fake_nvml.NVML_ERROR_NOT_SUPPORTED,
        clocks_event_reasons=fake_nvml.NVML_ERROR_NOT_SUPPORTED,
    )

    lines = run("--wide", "--no-color")[0].splitlines()
    header = lines[1]

    for name in ("Vol unc ECC", "Remap", "Clock events"):
        assert name in header
    column = header.index("Remap")
    assert [line[column:].split()[0] for line in lines[2:]] == ["pending", "failed", "N/A"]
    events = header.index("Clock events")
    assert [line[events:].split()[0] for line in lines[2:]] == [
        "gpu_idle",
        "sw_power_cap,hw_thermal_slowdown",
        "N/A",
    ]
    assert lines[2][: header.index("Remap")].rstrip().endswith("2")


def test_wide_table_highlights_hardware_trouble(fake_nvml: ModuleType) -> None:
    gpu = fake_nvml.STATE.gpus[0]
    gpu.ecc_uncorrected_volatile, gpu.clocks_event_reasons = 1, 0x8

    row = run("--wide", "--force-color", "--index", "0")[0].splitlines()[2]

    assert "\x1b[33;1mhw_slowdown \x1b[0m" in row  # padded to "Clock events"
    assert "\x1b[33;1m" + " " * 10 + "1\x1b[0m" in row  # padded to "Vol unc ECC"


def columns(text: str) -> int:
    """Terminal columns of ``text`` (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_a_wide_gpu_name_keeps_the_columns_aligned(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].name = "显卡 H100 🙂"  # wide characters take two columns

    lines = run("--no-color")[0].splitlines()[1:]

    lasts = ["State", "OK", "OK"]
    states = [columns(line[: line.index(s)]) for line, s in zip(lines, lasts, strict=True)]
    memory_ends = [columns(line[: line.index("MiB")]) for line in lines[1:]]
    assert states[0] == states[1] == states[2]
    assert memory_ends[0] == memory_ends[1]


def test_highlights_follow_the_thresholds_of_rules(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "HOT_TEMPERATURE_C", 34)
    monkeypatch.setattr(rules, "HIGH_PERCENT", 101)
    gpu = fake_nvml.STATE.gpus[0]
    gpu.temperature, gpu.utilization_gpu = 34, 100

    row = run("--force-color", "--index", "0")[0].splitlines()[2]

    assert "\x1b[33;1m34 C\x1b[0m" in row
    assert "\x1b[33;1m" not in row.replace("\x1b[33;1m34 C\x1b[0m", "")


def test_json_on_a_gpu_node_does_not_import_drf() -> None:
    """A node's project (the core, the history) imports nothing of DRF's serializers to
    run ``gpu_devices --json``: that import would be most of the command's start-up
    (terminal.dataclass_json, docs/command.md)."""
    code = (
        "import sys, django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes', "
        "'django.contrib.auth', 'rest_framework', 'gpu_monitor', 'gpu_monitor.history'], "
        "DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}})\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('gpu_devices', '--json', '-p')\n"
        "print(sorted(m for m in sys.modules if m.startswith('rest_framework.')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "fakes"), "FAKE_NVML_GPUS": "2"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    document, imported = result.stdout.splitlines()
    assert json.loads(document)["count"] == 0  # the healthy fake GPUs run no process
    assert "rest_framework.serializers" not in imported
    assert "rest_framework.renderers" not in imported
