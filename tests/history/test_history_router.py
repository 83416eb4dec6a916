"""The history API under a database router that keeps the history tables in a second
database (issue 18 item 6): every query goes where the router says, none to ``default``.

The second database needs its own settings (``--ds tests.history.settings_api_router``):
under the suite's settings one test runs this file again in a process with them.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.params import moment
from gpu_monitor.usage.models import Hold, Usage

HOST = socket.gethostname()
UUID0 = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
T0 = 1_795_824_000


def record(start: int, end: int) -> None:
    Sample.objects.bulk_create(
        Sample(
            host=HOST,
            gpu_uuid=UUID0,
            gpu_index=0,
            name="NVIDIA H100 80GB HBM3",
            epoch=epoch,
            timestamp=moment(epoch),
            utilization_percent=(epoch // 10) % 97,
            used_memory_mb=1000,
            total_memory_mb=81559,
            temperature_c=40,
            power_draw_w=100.0,
        )
        for epoch in range(start, end, 10)
    )


def iso(offset: int) -> str:
    return moment(T0 + offset).isoformat()


@pytest.mark.routed
@pytest.mark.django_db(databases=["default", "history"])
# 10 s buckets from the samples; 600 s buckets from the rollups and the samples after them
@pytest.mark.parametrize(("until", "points"), [(600, 60), (1800, 3)])
def test_history_reads_the_routed_database(until: int, points: int) -> None:
    from gpu_monitor.history.aggregate import roll_up

    record(T0, T0 + 1800)
    assert roll_up(HOST, T0, T0 + 1200) == 4
    assert Rollup.objects.using("history").count() == 4
    with (
        CaptureQueriesContext(connections["default"]) as on_default,
        CaptureQueriesContext(connections["history"]) as on_history,
    ):
        response = Client().get(
            "/api/gpu/history", {"gpu": "0", "since": iso(0), "until": iso(until), "points": points}
        )

    assert response.status_code == 200, response.content
    (series,) = response.json()["series"]
    assert sum(v is not None for v in series["utilization_percent"]) == points
    assert len(on_default) == 0
    tables = " ".join(query["sql"] for query in on_history)
    assert ("gpu_monitor_history_rollup" in tables) == (until == 1800)


@pytest.mark.routed
@pytest.mark.django_db(databases=["default", "history"])
def test_events_read_the_routed_database() -> None:
    Event.objects.create(
        host=HOST, gpu_uuid="", gpu_index=3, epoch=T0, timestamp=moment(T0), kind="gpu_lost"
    )
    with CaptureQueriesContext(connections["default"]) as on_default:
        response = Client().get("/api/gpu/events", {"gpu": "3"})

    assert response.status_code == 200, response.content
    assert [e["kind"] for e in response.json()["results"]] == ["gpu_lost"]
    assert len(on_default) == 0


OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}


def usage_rows() -> None:
    """alice: two periods of GPU 0, 600 s held, 300 s idle; a hold idle for two hours."""
    for period, idle in ((T0, 300), (T0 + 300, 0)):
        Usage.objects.create(
            host=HOST, gpu_uuid=UUID0, gpu_index=0, user="alice", period=period,
            seconds_held=300, idle_seconds=idle, utilization_sum=300 * 40,
            utilization_seconds=300, first_epoch=period + 10, last_epoch=period + 300,
        )  # fmt: skip
    now = int(time.time())
    Hold.objects.create(
        host=HOST, gpu_uuid=UUID0, gpu_index=0, user="alice", held_since=now - 7200,
        idle_since=now - 7200, last_epoch=now, interval_seconds=10, memory_mb=512,
    )  # fmt: skip


@pytest.mark.routed
@pytest.mark.django_db(databases=["default", "history"])
@override_settings(GPU_MONITOR=OPEN)
def test_usage_reads_the_routed_database() -> None:
    usage_rows()
    assert Usage.objects.using("history").count() == 2
    with CaptureQueriesContext(connections["default"]) as on_default:
        report = Client().get("/api/gpu/usage", {"since": iso(0), "until": iso(600)})
        idle = Client().get("/api/gpu/usage/idle", {"minutes": "60"})

    assert report.status_code == 200, report.content
    (row,) = report.json()["rows"]
    # 600 s held, 300 of them idle: 1/6 h and 1/12 h.
    assert (row["user"], row["gpu_hours"], row["idle_gpu_hours"]) == ("alice", 0.167, 0.083)
    assert idle.status_code == 200, idle.content
    assert [(g["user"], g["memory_mb"]) for g in idle.json()["gpus"]] == [("alice", 512)]
    assert len(on_default) == 0


@pytest.mark.routed
@pytest.mark.django_db(databases=["default", "history"])
def test_gpu_usage_reads_the_routed_database() -> None:
    usage_rows()
    out, idle = io.StringIO(), io.StringIO()
    with CaptureQueriesContext(connections["default"]) as on_default:
        call_command("gpu_usage", "--since", iso(0), "--until", iso(600), "--csv", stdout=out)
        call_command("gpu_usage", "--idle", "60", "--csv", stdout=idle)

    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert (row["user"], row["gpu_hours"], row["idle_gpu_hours"]) == ("alice", "0.167", "0.083")
    assert [g["user"] for g in csv.DictReader(io.StringIO(idle.getvalue()))] == ["alice"]
    assert len(on_default) == 0


def test_the_routed_run_passes() -> None:
    """This file under the router settings, in a process of its own."""
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-cov",
            "--ds",
            "tests.history.settings_api_router",
            str(Path(__file__).relative_to(root)),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "5 passed, 1 deselected" in run.stdout
