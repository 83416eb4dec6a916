"""A node whose clock runs ahead: its tick is stored no later than the database's clock,
so the fleet reads it stale, then down, once it stops, not "up" until its future time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.models import Sample
from gpu_monitor.history.recorder import Recorder
from tests.fleet.conftest import NOW, Clock, DatabaseClock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]
WRITER_LOGGER = "gpu_monitor.fleet.writer"


def host() -> dict[str, Any]:
    response = APIClient().get("/api/gpu/hosts/node-1")
    assert response.status_code == 200, response.json()
    return dict(response.json())


def test_a_tick_an_hour_ahead_is_stored_at_the_database_time(
    record: Record, clock: Clock, database_clock: DatabaseClock
) -> None:
    database_clock.now = NOW  # the database's (and the central site's) time
    record("node-1", epoch=NOW + 3600, interval=10)  # the node's clock: an hour ahead
    states = []
    for age in (30, 31, 600):  # then the node stops
        clock.now = NOW + age
        states.append((host()["age_seconds"], host()["state"]))

    row = HostState.objects.get()
    assert (row.epoch, row.timestamp.timestamp()) == (NOW, NOW)
    assert states == [(30, "up"), (31, "stale"), (600, "down")]  # not "up" until NOW + 3600
    # The samples keep the node's own time (the history's), only the host's row moves.
    assert set(Sample.objects.values_list("epoch", flat=True)) == {NOW + 3600}


@pytest.mark.parametrize(
    ("database_now", "tick", "stored"),
    [
        (NOW, NOW - 5, NOW - 5),  # a tick in the past (written late): as it is
        (NOW, NOW + 1, NOW + 1),  # within the tolerance: as it is
        (NOW, NOW + 2, NOW),  # ahead: the database's time
        (NOW + 0.5, NOW + 1, NOW + 1),
        (NOW + 0.5, NOW + 2, NOW),  # whole seconds, never rounded up
    ],
)
def test_the_tolerance_is_one_second(
    record: Record, database_clock: DatabaseClock, database_now: float, tick: int, stored: int
) -> None:
    database_clock.now = database_now

    record("node-1", epoch=tick)

    assert HostState.objects.get().epoch == stored


def test_the_node_warns_once_then_says_when_its_clock_agrees_again(
    record: Record, database_clock: DatabaseClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=WRITER_LOGGER)
    database_clock.now = NOW
    recorder = record("node-1", epoch=NOW + 3600)
    database_clock.now = NOW + 10
    recorder.tick(NOW + 3610)
    database_clock.now = NOW + 20
    recorder.tick(NOW + 20)  # its clock was set right

    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == WRITER_LOGGER]
    assert [level for level, _ in logged] == ["WARNING", "INFO"]
    assert logged[0][1].startswith(
        "Host node-1: this node's clock is 3600 s ahead of the database's"
    )
    assert logged[1][1] == "Host node-1: this node's clock agrees with the database's again."
    assert HostState.objects.get().epoch == NOW + 20


def test_the_databases_real_clock(record: Record, database_clock: DatabaseClock) -> None:
    """On SQLite (this machine's clock) and in the PostgreSQL pass (the server's)."""
    database_clock.real = True
    before = time.time()
    record("node-ahead", epoch=int(before) + 3600)
    record("node-behind", epoch=int(before) - 60)
    after = time.time()

    stored = dict(HostState.objects.values_list("host", "epoch"))
    assert int(before) - 1 <= stored["node-ahead"] <= after + 1
    assert stored["node-behind"] == int(before) - 60
