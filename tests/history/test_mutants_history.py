"""Tests written against the mutants of ``gpu_monitor/history/`` that survived its tests
(docs/benchmarks.md, "Mutation testing")."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import ProgrammingError, connection
from django.test import Client, RequestFactory

from gpu_monitor.history import partitions
from gpu_monitor.history.admin import EventAdmin, SampleAdmin
from gpu_monitor.history.limits import MAX_POINTS
from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager

pytestmark = pytest.mark.django_db
SINCE, UNTIL = "2026-11-28T00:00:00Z", "2026-11-28T01:00:00Z"


@pytest.mark.parametrize(("model", "model_admin"), [(Sample, SampleAdmin), (Event, EventAdmin)])
def test_recorded_rows_cannot_be_added_changed_or_deleted_even_by_a_superuser(
    model: type, model_admin: type
) -> None:
    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    site_admin = model_admin(model, admin.site)

    assert site_admin.has_view_permission(request) is True
    assert site_admin.has_add_permission(request) is False
    assert site_admin.has_change_permission(request) is False
    assert site_admin.has_delete_permission(request) is False


@pytest.mark.parametrize(("points", "status"), [(1, 200), (MAX_POINTS, 200), (0, 400)])
def test_points_from_1_to_max_points(client: Client, points: int, status: int) -> None:
    response = client.get(
        "/api/gpu/history", {"since": SINCE, "until": UNTIL, "points": str(points)}
    )

    assert response.status_code == status, response.content


def test_a_window_that_ends_where_it_starts_is_400(client: Client) -> None:
    response = client.get("/api/gpu/history", {"since": SINCE, "until": SINCE})

    assert response.status_code == 400
    assert "since" in response.json()["detail"]


# -- issue 26, items 11 and 12: the edges of the buffer, partitions and retention ------


def test_a_buffer_of_one_tick_records_every_tick(fake_nvml: ModuleType) -> None:
    """HISTORY_BUFFER_TICKS=1 keeps the tick just taken: ``len > 1`` drops, ``>= 1`` would
    drop every tick before it is written."""
    recorder = Recorder(GPUManager(), host="h", interval=10, retention_s=None, buffer_ticks=1)

    recorder.tick(1000)
    recorder.tick(1010)

    epochs = sorted(Sample.objects.values_list("epoch", flat=True))
    assert epochs == [1000, 1000, 1010, 1010]  # two GPUs a tick
    assert recorder.buffer.dropped == 0
    assert not Event.objects.filter(kind="samples_dropped").exists()


def test_the_days_next_to_an_existing_partition_are_not_covered_by_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A partition of day D covers D only: the day that ends where it starts, and the day
    that starts where it ends, still need their own."""
    day = 1_899_331_200  # 2030-03-10T00:00:00Z
    existing = [partitions.Partition("p", day, day + partitions.DAY)]
    monkeypatch.setattr(partitions, "partitions", lambda using: existing)

    wanted = partitions.days_to_create("default", day - partitions.DAY, 3)

    assert wanted == [day - partitions.DAY, day + partitions.DAY]


@pytest.mark.django_db(transaction=True)  # the refused DELETE outside a test's transaction
def test_a_refused_delete_turns_retention_off_and_no_delete_is_tried_again(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may not delete (PostgreSQL's 42501): one DELETE, one ERROR, then
    retention stays off, not a refused DELETE and an ERROR every minute."""
    deletes: list[str] = []

    class Refused(Exception):
        sqlstate = "42501"

    def no_delete(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("DELETE"):
            deletes.append(sql)
            try:
                raise Refused("permission denied for table gpu_monitor_history_sample")
            except Refused as cause:
                raise ProgrammingError(str(cause)) from cause
        return execute(sql, params, many, context)

    recorder = Recorder(GPUManager(), host="h", interval=10, retention_s=60, buffer_ticks=10)
    with (
        caplog.at_level(logging.ERROR, logger="gpu_monitor.history"),
        connection.execute_wrapper(no_delete),
    ):
        for epoch in range(1000, 1310, 10):  # five minutes: retention is due at each one
            recorder.tick(epoch)

    assert len(deletes) == 1
    assert recorder.retention.retention_s is None and recorder.failure is None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("Retention is off: the database role may not delete")
    assert Sample.objects.filter(host="h").count() == 31 * 2  # recording went on
