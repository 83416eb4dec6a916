"""The history API under a database router that keeps the history tables in a second
database (issue 18 item 6): every query goes where the router says, none to ``default``.

The second database needs its own settings (``--ds tests.history.settings_api_router``):
under the suite's settings one test runs this file again in a process with them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.history.recorder import moment

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
    assert "3 passed, 1 deselected" in run.stdout
