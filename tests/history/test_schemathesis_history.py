"""Schemathesis over GET history and events, every check on and no exception.

The schema describes each query parameter as the views accept it (patterns, bounds,
enums), so that valid data is never a 400 and invalid data never a 200. One rule no
schema can state, ``since`` before ``until``, is checked here: a request that breaks it
must be the 400 that names it, and is held to every other check. So is the other, a page
past the last (it depends on the rows): the 400 that names ``page``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import ModuleType

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gpu_monitor.history.models import Event, Sample
from gpu_monitor.params import moment
from tests.schemathesis_helper import (
    call_and_validate_page,
    call_and_validate_window,
    kept_connection,
    wsgi_schema,
)

schema = wsgi_schema("^/api/gpu/(history|events)/$")
HOST = socket.gethostname()
DEFAULT_SPAN_S = 3600  # history's window when since is not given: the hour before until


@pytest.fixture(params=["healthy", "no_nvml", "lost", "mig"])
def scenario(request: pytest.FixtureRequest, fake_nvml: ModuleType, db: None) -> Iterator[str]:
    """The fake NVML in one state, and a recorded hour of two GPUs with their events
    (one GPU lost before its UUID was read), so that 200s carry data to check."""
    fake_nvml.configure(gpus=3, scenario=request.param)
    now = int(time.time())
    uuids = [f"GPU-3a34af56-e2e8-164a-8e46-{index:012x}" for index in range(2)]
    Sample.objects.bulk_create(
        Sample(
            host=HOST,
            gpu_uuid=uuid,
            gpu_index=index,
            name="NVIDIA H100 80GB HBM3",
            epoch=epoch,
            timestamp=moment(epoch),
            utilization_percent=epoch % 101,
            used_memory_mb=1000,
            total_memory_mb=81559,
            temperature_c=40,
            power_draw_w=100.0,
        )
        for epoch in range(now - 3600, now, 60)
        for index, uuid in enumerate(uuids)
    )
    Event.objects.bulk_create(
        [
            Event(host=HOST, gpu_uuid=uuids[0], gpu_index=0, epoch=now - 60,
                  timestamp=moment(now - 60), kind="xid", xid=79, message="XID 79"),
            Event(host=HOST, gpu_uuid="", gpu_index=3, epoch=now - 30,
                  timestamp=moment(now - 30), kind="gpu_lost", message="GPU is lost"),
        ]
    )  # fmt: skip
    with kept_connection():
        yield str(request.param)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_history_and_events_conform_to_their_schema(case: schemathesis.Case, scenario: str) -> None:
    if not case.path.endswith("/events/"):
        call_and_validate_window(case, "/history/", DEFAULT_SPAN_S)
        return
    call_and_validate_page(case)
