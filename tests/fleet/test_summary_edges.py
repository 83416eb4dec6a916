"""The edges of a host's summary in GET hosts: the mean utilisation over the GPUs that
report one, and the XID window of exactly 24 hours."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from rest_framework.test import APIClient

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.models import Event
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.params import moment
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]


def only_host() -> dict[str, Any]:
    response = APIClient().get("/api/gpu/hosts")
    assert response.status_code == 200, response.json()
    (host,) = response.json()["results"]
    return dict(host)


def test_the_mean_utilisation_leaves_out_a_gpu_that_reports_none(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    fake_nvml.configure(gpus=3)
    gpus = fake_nvml.STATE.gpus
    gpus[0].utilization_gpu, gpus[1].utilization_gpu = 20, 81
    gpus[2].errors["utilization"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    record("node-1")

    host = only_host()

    stored = HostState.objects.get().devices
    assert [d["utilization_percent"] for d in stored] == [20, 81, None]
    assert host["gpu_count"] == 3
    assert host["utilization_percent"] == 50.5  # (20 + 81) / 2, not / 3 (33.7)


def test_no_gpu_reporting_utilisation_is_null(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    fake_nvml.configure(gpus=2)
    for gpu in fake_nvml.STATE.gpus:
        gpu.errors["utilization"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    record("node-1")

    assert only_host()["utilization_percent"] is None


@pytest.mark.parametrize(
    ("age", "counted"),
    [(0, 1), (86399, 1), (86400, 0), (86401, 0)],
)
def test_xid_24h_counts_the_86400_seconds_before_now_not_one_exactly_a_day_old(
    record: Record, clock: Clock, age: int, counted: int
) -> None:
    record("node-1")
    clock.now = NOW + 90000
    epoch = clock.now - age
    Event.objects.create(host="node-1", epoch=epoch, timestamp=moment(epoch), kind="xid", xid=79)

    assert only_host()["xid_24h"] == counted
