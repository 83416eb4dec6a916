"""``gpu_usage --csv`` and ``--idle --csv`` against numbers worked out by hand (issue 26,
item 23), not against the functions the command calls: two hosts recorded through the
real recorder, one ticking every 10 s and one every 60 s, and user names with commas
and quotes."""

from __future__ import annotations

import csv
import io
import time

import pytest
from django.core.management import call_command

from gpu_monitor.params import iso
from tests.usage.conftest import NOW, Script

pytestmark = pytest.mark.django_db
SMITH = "Smith, Jo"
LEE = 'Lee, "Al"'
UUID0 = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"  # the fake NVML's GPUs 0 and 1
UUID1 = "GPU-3a34af56-e2e8-164a-8e46-000000000001"


def csv_rows(*args: str) -> list[dict[str, str]]:
    out = io.StringIO()
    call_command("gpu_usage", *args, "--csv", stdout=out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


@pytest.fixture
def two_hosts(script: Script) -> None:
    """node-10s, 10 s ticks from NOW: Smith on GPU 0 at 0 % with 2048 MiB for 90 ticks
    (900 s), Lee on GPU 1 at 50 % with 512 MiB for 180 ticks (1800 s). node-60s, 60 s
    ticks from NOW: Smith on GPU 0 at 80 % with 1024 MiB for 60 ticks (3600 s)."""
    script.host = "node-10s"
    script.restart(10)
    script.users = {0: [(SMITH, 2048)], 1: [(LEE, 512)]}
    script.utilization(0, 0)
    script.utilization(1, 50)
    script.tick(90)  # to NOW + 900
    del script.users[0]
    script.tick(90)  # to NOW + 1800
    script.host, script.epoch = "node-60s", NOW
    script.restart(60)
    script.users = {0: [(SMITH, 1024)]}
    script.utilization(0, 80)
    script.tick(60)  # to NOW + 3600


WINDOW = ("--since", iso(NOW), "--until", iso(NOW + 7200))
FIELDS = [
    "gpu_hours", "idle_gpu_hours", "active_gpu_hours", "shared_gpu_hours",
    "utilization_percent", "max_memory_mb", "memory_gib_hours", "first_seen", "last_seen",
]  # fmt: skip


def test_csv_by_user_is_the_hand_worked_sums_of_both_hosts(two_hosts: None) -> None:
    rows = csv_rows(*WINDOW)

    # Smith: 900 + 3600 s = 1.25 h, the 900 s at 0 % idle; mean utilisation
    # (0 x 900 + 80 x 3600) / 4500 = 64 %; memory (2048 x 900 + 1024 x 3600) MiB-s
    # = 5 529 600 / 1024 / 3600 = 1.5 GiB-h; first tick NOW+10 (node-10s), last NOW+3600.
    # Lee: 1800 s = 0.5 h at 50 %; 512 x 1800 / 1024 / 3600 = 0.25 GiB-h; NOW+10 to +1800.
    assert [[r["user"], *(r[f] for f in FIELDS)] for r in rows] == [
        [SMITH, "1.25", "0.25", "1.0", "0.0", "64.0", "2048", "1.5",
         "2026-11-28T08:50:10Z", "2026-11-28T09:50:00Z"],
        [LEE, "0.5", "0.0", "0.5", "0.0", "50.0", "512", "0.25",
         "2026-11-28T08:50:10Z", "2026-11-28T09:20:00Z"],
    ]  # fmt: skip
    assert iso(NOW + 10) == "2026-11-28T08:50:10Z"


def test_csv_by_host_and_user_and_by_gpu_split_the_hosts(two_hosts: None) -> None:
    by_host_user = csv_rows(*WINDOW, "--by", "host,user")
    by_gpu = csv_rows(*WINDOW, "--by", "gpu")

    # node-60s Smith 3600 s at 80 %; node-10s Lee 1800 s at 50 %; node-10s Smith 900 s idle.
    found = [(r["host"], r["user"], r["gpu_hours"], r["utilization_percent"]) for r in by_host_user]
    assert found == [
        ("node-60s", SMITH, "1.0", "80.0"),
        ("node-10s", LEE, "0.5", "50.0"),
        ("node-10s", SMITH, "0.25", "0.0"),
    ]  # fmt: skip
    assert [(r["host"], r["gpu_index"], r["gpu_uuid"], r["gpu_hours"]) for r in by_gpu] == [
        ("node-60s", "0", UUID0, "1.0"),
        ("node-10s", "1", UUID1, "0.5"),
        ("node-10s", "0", UUID0, "0.25"),
    ]


def test_idle_csv_is_the_hand_worked_holds_of_both_hosts(script: Script) -> None:
    # Both hosts' last tick is now: node-10s idle for 10 ticks (since now - 100), node-60s
    # for 2 (since now - 120); Smith on node-10s GPU 1 is busy at 40 %.
    now = int(time.time())
    script.host, script.epoch = "node-10s", now - 100
    script.restart(10)
    script.users = {0: [(LEE, 300)], 1: [(SMITH, 700)]}
    script.utilization(0, 0)
    script.utilization(1, 40)
    script.tick(10)
    script.host, script.epoch = "node-60s", now - 120
    script.restart(60)
    script.users = {0: [(SMITH, 1500)]}
    script.utilization(0, 0)
    script.tick(2)

    rows = csv_rows("--idle", "1")

    assert rows == [
        {"host": "node-10s", "gpu_index": "0", "gpu_uuid": UUID0, "user": LEE,
         "idle_since": iso(now - 100), "memory_mb": "300"},
        {"host": "node-60s", "gpu_index": "0", "gpu_uuid": UUID0, "user": SMITH,
         "idle_since": iso(now - 120), "memory_mb": "1500"},
    ]  # fmt: skip
    assert [r["user"] for r in csv_rows("--idle", "2")] == [SMITH]  # 120 s: only node-60s's
