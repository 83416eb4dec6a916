"""manage.py gpu_usage: the table, --json identical to GET usage, --csv, --idle, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from gpu_monitor.params import iso
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.report import idle_now

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
NOW = 1_795_855_800  # 2026-11-28T08:50:00Z, a five-minute period's start
WINDOW = ("--since", "2026-11-28T00:00:00Z", "--until", "2026-11-29")
SINCE, UNTIL = NOW - 31800, NOW + 54600  # WINDOW in Unix seconds
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}


def used(
    user: str,
    *,
    host: str = "node-1",
    gpu: int = 0,
    period: int = NOW,
    held: int = 300,
    idle: int = 0,
    shared: int = 0,
    utilization: int = 50,
    memory: int = 1024,
) -> None:
    """One usage row: ``held`` seconds of ``period``, ``idle`` of them idle."""
    Usage.objects.create(
        host=host,
        gpu_uuid=f"GPU-0000000{gpu}",
        gpu_index=gpu,
        user=user,
        period=period,
        seconds_held=held,
        idle_seconds=idle,
        shared_seconds=shared,
        utilization_sum=utilization * held,
        utilization_seconds=held,
        max_memory_mb=memory,
        memory_mib_seconds=memory * held,
        first_epoch=period + 10,
        last_epoch=period + held,
    )


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_usage", *args, stdout=out, no_color=True)
    return out.getvalue()


@pytest.fixture
def week() -> None:
    """alice: 1.5 GPU-hours on two GPUs, a third of it idle; bob: 0.5 h shared with her."""
    for n in range(12):  # an hour on GPU 0, every third period idle
        used("alice", period=NOW + 300 * n, idle=300 if n % 3 == 0 else 0, memory=2048)
    for n in range(6):  # half an hour on GPU 1 of node-2, shared with bob
        used("alice", host="node-2", gpu=1, period=NOW + 300 * n, shared=300, utilization=80)
        used("bob", host="node-2", gpu=1, period=NOW + 300 * n, shared=300, utilization=80)


def test_the_table_has_a_line_per_user_and_a_total(week: None) -> None:
    lines = run(*WINDOW).splitlines()

    assert lines[0] == "GPU usage by user, 2026-11-28 00:00 to 2026-11-29 00:00 UTC"
    assert lines[1].split() == [
        "User", "GPU-hours", "Idle", "Active", "Shared", "Util", "Max", "mem", "Mem", "GiB-h",
        "First", "seen", "Last", "seen",
    ]  # fmt: skip
    assert lines[2].split() == [
        "alice", "1.50", "0.33", "1.17", "0.50", "60%", "2048", "MiB", "2.50",
        "2026-11-28", "08:50", "2026-11-28", "09:50",
    ]  # fmt: skip
    assert lines[3].split() == [
        "bob", "0.50", "0.00", "0.50", "0.50", "80%", "1024", "MiB", "0.50",
        "2026-11-28", "08:50", "2026-11-28", "09:20",
    ]  # fmt: skip
    assert lines[4].split() == [
        "Total", "2.00", "0.33", "1.67", "1.00", "65%", "2048", "MiB", "3.00",
        "2026-11-28", "08:50", "2026-11-28", "09:50",
    ]  # fmt: skip
    assert len(lines) == 5
    # Aligned: a figure ends where its column's title ends.
    assert lines[2].index("1.50") + 4 == lines[1].index("GPU-hours") + 9
    assert lines[3].index("0.50") == lines[2].index("1.50")


def test_the_table_groups_by_gpu_and_by_host_and_user(week: None) -> None:
    by_gpu = run(*WINDOW, "--by", "gpu").splitlines()
    assert by_gpu[0].startswith("GPU usage by gpu, ")
    assert by_gpu[1].split()[:4] == ["Host", "GPU", "UUID", "GPU-hours"]
    assert by_gpu[2].split()[:4] == ["node-1", "0", "GPU-00000000", "1.00"]
    assert by_gpu[3].split()[:4] == ["node-2", "1", "GPU-00000001", "1.00"]

    by_host_user = run(*WINDOW, "--by", "host,user", "--host", "node-2").splitlines()
    assert by_host_user[0].startswith("GPU usage by host and user, ")
    assert [line.split()[:3] for line in by_host_user[1:]] == [
        ["Host", "User", "GPU-hours"],
        ["node-2", "alice", "0.50"],
        ["node-2", "bob", "0.50"],
        ["Total", "1.00", "0.00"],
    ]


def test_only_one_user(week: None) -> None:
    lines = run(*WINDOW, "--user", "bob").splitlines()

    assert [line.split()[0] for line in lines[2:]] == ["bob", "Total"]


def test_an_empty_window_says_so(week: None) -> None:
    assert run("--since", "2026-11-01", "--until", "2026-11-02").strip() == (
        "No GPU usage recorded from 2026-11-01 00:00 to 2026-11-02 00:00 UTC."
    )


def test_the_default_window_is_the_last_7_days() -> None:
    now = int(time.time())
    used("carol", period=now // 300 * 300 - 6 * 86400)
    used("dave", period=now // 300 * 300 - 8 * 86400)

    assert [line.split()[0] for line in run().splitlines()[2:]] == ["carol", "Total"]
    assert [line.split()[0] for line in run("--since", "9d").splitlines()[2:]] == [
        "carol",
        "dave",
        "Total",
    ]


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize("by", ["user", "host", "gpu", "host,user"])
def test_json_is_byte_for_byte_the_body_of_get_usage(week: None, by: str) -> None:
    printed = run(*WINDOW, "--by", by, "--json")
    response = APIClient().get(
        "/api/gpu/usage",
        {"since": "2026-11-28T00:00:00Z", "until": "2026-11-29", "by": by},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 200
    assert printed == response.content.decode() + "\n"
    assert json.loads(printed)["rows"]


def test_csv_has_a_header_row_and_the_api_values(week: None) -> None:
    rows = list(csv.DictReader(io.StringIO(run(*WINDOW, "--by", "host,user", "--csv"))))

    assert list(rows[0]) == [
        "host", "user", "gpu_hours", "idle_gpu_hours", "active_gpu_hours", "shared_gpu_hours",
        "utilization_percent", "max_memory_mb", "memory_gib_hours", "first_seen", "last_seen",
    ]  # fmt: skip
    # By hand from the fixture: alice on node-1, 12 periods of 300 s (1 h), 4 of them idle
    # (1200 s = 0.333 h), at 50 % with 2048 MiB (2 GiB-h), 08:50:10 to 09:50; alice and bob
    # on node-2, 6 periods (0.5 h), all shared, at 80 % with 1024 MiB (0.5 GiB-h), to 09:20.
    node_2 = ["0.5", "0.0", "0.5", "0.5", "80.0", "1024", "0.5"]
    assert [list(row.values()) for row in rows] == [
        ["node-1", "alice", "1.0", "0.333", "0.667", "0.0", "50.0", "2048", "2.0",
         "2026-11-28T08:50:10Z", "2026-11-28T09:50:00Z"],
        ["node-2", "alice", *node_2, "2026-11-28T08:50:10Z", "2026-11-28T09:20:00Z"],
        ["node-2", "bob", *node_2, "2026-11-28T08:50:10Z", "2026-11-28T09:20:00Z"],
    ]  # fmt: skip


def test_a_user_name_is_printed_as_it_is_and_control_characters_escaped() -> None:
    odd = "<img src=x onerror=alert(1)> Zoë 山田"
    used(odd, period=NOW, held=3600)
    used("bad\nname\x1b[31m", period=NOW, held=1800)

    lines = run(*WINDOW).splitlines()
    assert lines[2].startswith(odd) and lines[2][len(odd) :].split()[0] == "1.00"
    assert lines[3].startswith("bad\\nname\\x1b[31m")
    # Wide characters take two columns: the figures stay aligned.
    assert lines[3].index("0.50") == lines[2].index("1.00") + 2  # 山田: two wide characters
    assert list(csv.reader(io.StringIO(run(*WINDOW, "--csv"))))[1][0] == odd


def test_a_combining_accent_takes_no_column() -> None:
    used("Zoe\u0308", period=NOW, held=3600)  # Zoë written with a combining diaeresis
    used("alice", period=NOW, held=1800)

    lines = run(*WINDOW).splitlines()

    assert lines[2].startswith("Zoe\u0308  ") and lines[3].startswith("alice  ")
    assert lines[2].index("1.00") == lines[3].index("0.50") + 1  # 4 characters, 3 columns


def hold(user: str, idle_minutes: int | None, *, gpu: int = 0, host: str = "node-1") -> None:
    now = int(time.time())
    Hold.objects.create(
        host=host,
        gpu_uuid=f"GPU-0000000{gpu}",
        gpu_index=gpu,
        user=user,
        held_since=now - 86400,
        idle_since=None if idle_minutes is None else now - idle_minutes * 60,
        last_epoch=now,
        interval_seconds=10,
        memory_mb=4096,
    )


def test_idle_lists_the_gpus_held_idle_for_the_default_60_minutes() -> None:
    hold("alice", 90)
    hold("bob", 30, gpu=1)
    hold("carol", None, gpu=2)

    lines = run("--idle").splitlines()

    assert lines[0] == "1 GPU(s) held with every sample idle for 60 min or more (UTC)"
    # Notified: with gpu_monitor.notify installed (tests/usage/test_notified.py).
    titles = ["Host", "GPU", "User", "Idle", "since", "Idle", "for", "Memory", "Notified", "UUID"]
    assert lines[1].split() == titles
    assert lines[2].split()[:3] == ["node-1", "0", "alice"]
    assert lines[2].split()[5:8] == ["1", "h", "30"]  # idle for 1 h 30 min
    assert lines[2].split()[-4:] == ["4096", "MiB", "no", "GPU-00000000"]
    assert len(lines) == 3
    assert [line.split()[2] for line in run("--idle", "20").splitlines()[2:]] == ["alice", "bob"]


def test_idle_as_json_and_csv_is_the_api_body() -> None:
    hold("alice", 90)
    hold("bob", 90, host="node-2")

    printed = json.loads(run("--idle", "45", "--json"))
    assert printed == idle_now(minutes=45)
    assert [g["user"] for g in printed["gpus"]] == ["alice", "bob"]
    assert printed["minutes"] == 45
    assert [g["user"] for g in json.loads(run("--idle", "--host", "node-2", "--json"))["gpus"]] == [
        "bob"
    ]
    rows = list(csv.DictReader(io.StringIO(run("--idle", "--csv", "--user", "alice"))))
    assert list(rows[0]) == ["host", "gpu_index", "gpu_uuid", "user", "idle_since", "memory_mb"]
    assert [(r["user"], r["memory_mb"]) for r in rows] == [("alice", "4096")]
    # The hold the test wrote: idle since its own now less 90 minutes.
    assert rows[0]["idle_since"] == iso(Hold.objects.get(user="alice").idle_since or 0)
    assert rows[0]["gpu_uuid"] == "GPU-00000000" and rows[0]["host"] == "node-1"


def test_idle_says_when_no_gpu_is_held_idle() -> None:
    hold("carol", None)

    assert run("--idle", "5").strip() == (
        "No GPU is held by a user whose every sample of the last 5 min was idle."
    )


@override_settings(GPU_MONITOR=OPEN)
@pytest.mark.parametrize(
    ("args", "query"),
    [
        ([], {}),
        (["15"], {"minutes": "15"}),
        (["--host", "node-2"], {"host": "node-2"}),
        (["20", "--user", "bob"], {"minutes": "20", "user": "bob"}),
    ],
)
def test_idle_json_is_byte_for_byte_the_body_of_get_usage_idle(
    args: list[str], query: dict[str, str]
) -> None:
    hold("alice", 90)
    hold("bob", 30, host="node-2")

    printed = run("--idle", *args, "--json")
    response = APIClient().get("/api/gpu/usage/idle", query, HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert printed == response.content.decode() + "\n"
    assert json.loads(printed)["minutes"] == int(query.get("minutes", 60))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "argument --since: not a time or a duration like 30d"),
        (["--until", "2026-02-30"], "argument --until: not a time or a duration"),
        (["--by", "team"], "argument --by: invalid choice: 'team'"),
        (["--idle", "0"], "argument --idle: a whole number of minutes from 1 to 10080, not '0'"),
        (["--idle", "10081"], "argument --idle: a whole number of minutes from 1 to 10080"),
        (["--idle", "9" * 5000], "argument --idle: a whole number of minutes from 1 to 10080"),
        (["--json", "--csv"], "argument --csv: not allowed with argument --json"),
        (["--since", "1d", "--until", "2d"], "--since must be before --until"),
        (["--idle", "--by", "host"], "--idle lists the GPUs held idle now"),
        (["--host", "x" * 256], "argument --host: longer than 255 characters: 'xxx"),
        (["--user", "a\x00b"], "argument --user: contains a NUL character: 'a\\x00b'"),
    ],
)
def test_bad_arguments_are_a_clear_error(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match="^(Error: )?" + re.escape(message)):
        run(*args)


def manage(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    """``manage.py`` of the example project in a process of its own: fake NVML, its own
    SQLite file, gpu_monitor logging at INFO on stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_SQLITE_PATH": str(database),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--by", "team"], "manage.py gpu_usage: error: argument --by: invalid choice: 'team'"),
        (["--idle", "-1"], "manage.py gpu_usage: error: argument --idle: a whole number"),
        (["--since", "2d", "--until", "3d"], "CommandError: --since must be before --until ("),
    ],
)
def test_bad_arguments_exit_2_with_the_error_on_stderr(
    args: list[str], error: str, tmp_path: Path
) -> None:
    result = manage("gpu_usage", *args, database=tmp_path / "db.sqlite3")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(error)


def test_without_the_usage_tables_it_says_to_migrate(tmp_path: Path) -> None:
    result = manage("gpu_usage", database=tmp_path / "db.sqlite3")

    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: The usage tables cannot be read (no such table: "
        "gpu_monitor_usage_usage): run manage.py migrate.\n"
    )


def test_a_clean_run_prints_nothing_on_stderr() -> None:
    # One process, an in-memory database: migrate, then the command as manage.py runs it
    # (its sys.argv too: the apps' ready() reads it, and leaves NVML to a gpu_monitor
    # command, which gpu_usage never initialises).
    script = (
        "import sys; sys.argv = ['manage.py', 'gpu_usage', '--since', '30d']; "
        "import django; django.setup(); "
        "from django.core.management import call_command, execute_from_command_line; "
        "call_command('migrate', verbosity=0); "
        "execute_from_command_line(sys.argv)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_SQLITE_PATH": ":memory:",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("No GPU usage recorded from ")


def test_iso_times_of_the_report_are_the_apis(week: None) -> None:
    printed = json.loads(run(*WINDOW, "--json"))

    assert (printed["since"], printed["until"]) == (iso(SINCE), iso(UNTIL))


def test_idle_without_minutes_follows_the_usage_idle_minutes_setting() -> None:
    hold("alice", 90)
    hold("bob", 40, gpu=1)

    with override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 30}):
        printed = json.loads(run("--idle", "--json"))

    assert printed["minutes"] == 30
    assert [g["user"] for g in printed["gpus"]] == ["alice", "bob"]


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]
)
def test_csv_neutralises_a_name_a_spreadsheet_would_run_as_a_formula(name: str) -> None:
    # OWASP CSV injection: a cell beginning with = + - @, tab or CR gets a leading '.
    used(name, host=name, period=NOW, held=1800)
    used("=alice", host="node-1", period=NOW, held=3600, gpu=1)

    rows = list(csv.DictReader(io.StringIO(run(*WINDOW, "--by", "host,user", "--csv"))))

    assert [(r["host"], r["user"], r["gpu_hours"]) for r in rows] == [
        ("node-1", "'=alice", "1.0"),
        ("'" + name, "'" + name, "0.5"),
    ]


def test_csv_of_idle_neutralises_names_too() -> None:
    hold("=cmd|' /C calc'!A0", 90, host="@node")

    (row,) = csv.DictReader(io.StringIO(run("--idle", "--csv")))

    assert (row["host"], row["user"]) == ("'@node", "'=cmd|' /C calc'!A0")
    assert row["memory_mb"] == "4096"


def test_csv_names_with_commas_quotes_and_newlines_come_back_whole() -> None:
    names = ['Smith, "Jo"', "two\nlines", 'a"b,c\r\nd']
    for n, name in enumerate(names):  # 3, 2 and 1 hours
        used(name, period=NOW + 300 * n, held=3600 * (3 - n))

    rows = list(csv.DictReader(io.StringIO(run(*WINDOW, "--csv"))))

    assert [(r["user"], r["gpu_hours"]) for r in rows] == [
        ('Smith, "Jo"', "3.0"),
        ("two\nlines", "2.0"),
        ('a"b,c\r\nd', "1.0"),
    ]


def test_idle_counts_a_gpu_two_users_hold_once() -> None:
    hold("alice", 90)
    hold("bob", 90)  # the same GPU

    lines = run("--idle").splitlines()

    assert lines[0] == "1 GPU(s) held with every sample idle for 60 min or more (UTC), 2 holders"
    assert [line.split()[2] for line in lines[2:]] == ["alice", "bob"]
