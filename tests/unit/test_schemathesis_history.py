"""Schemathesis over GET history and events, every check on and no exception.

The schema describes each query parameter as the views accept it (patterns, bounds,
enums), so that valid data is never a 400 and invalid data never a 200. One rule no
schema can state, ``since`` before ``until``, is checked here: a request that breaks it
must be the 400 that names it, and is held to every other check.
"""

from __future__ import annotations

import calendar
import re
import socket
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.recorder import moment

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex="^/api/gpu/(history|events)/$"
)

HOST = socket.gethostname()
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ISO = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d)"
    r"(?:[T ](?P<h>\d\d):(?P<m>\d\d)(?::(?P<s>\d\d)(?:\.\d+)?)?"
    r"(?:Z|(?P<sign>[+-])(?P<oh>\d\d):?(?P<om>\d\d)?)?)?"
)


def epoch_of(value: object, now: int, default: int) -> int | None:
    """The time a query value gives, worked out here independently of the view; None
    when it is not one (then the window rule does not apply)."""
    if isinstance(value, list):  # a repeated parameter: Django reads the last one
        value = value[-1] if value else None
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return None
    text = value
    if text == "now":
        return now
    if re.fullmatch(r"-\d+[smhdw]", text):
        return now - int(text[1:-1]) * UNIT[text[-1]]
    match = ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match["date"].split("-"))
    fields = (year, month, day, int(match["h"] or 0), int(match["m"] or 0), int(match["s"] or 0))
    offset = int(match["oh"] or 0) * 3600 + int(match["om"] or 0) * 60
    return calendar.timegm(fields) - (-offset if match["sign"] == "-" else offset)


def reversed_window(path: str, query: Mapping[str, Any]) -> bool:
    """History with ``since`` at or after ``until`` (either may be a default)."""
    if not path.endswith("/history/"):
        return False
    now = int(time.time())
    until = epoch_of(query.get("until"), now, now)
    if until is None:
        return False
    since = epoch_of(query.get("since"), now, until - 3600)
    return since is not None and since >= until


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
    yield str(request.param)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_history_and_events_conform_to_their_schema(case: schemathesis.Case, scenario: str) -> None:
    response = case.call()
    if reversed_window(case.path, case.query or {}):
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith("since: must be before until")
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    else:
        case.validate_response(response)
