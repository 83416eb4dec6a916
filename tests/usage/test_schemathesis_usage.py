"""Schemathesis over GET usage and usage/idle: every check on.

The schema describes each parameter as the views accept it (enums, bounds, patterns),
so that valid data is never a 400 and invalid data never a 200. The rule no schema can
state, ``since`` before ``until``, is checked as for history: a request that breaks it
must be the 400 that names it, and is held to every other check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gpu_monitor.notify.models import Notice
from gpu_monitor.usage.limits import DEFAULT_SPAN_S
from gpu_monitor.usage.models import Hold, Usage
from tests.schemathesis_helper import call_and_validate_window, kept_connection, wsgi_schema

schema = wsgi_schema("^/api/gpu/usage/")


@pytest.fixture
def recorded(db: None) -> Iterator[None]:
    """A row, an idle hold of now and a notice about it (``notified``), so that 200s
    carry data to check."""
    now = int(time.time())
    uuid = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
    Usage.objects.create(
        host="node-1", gpu_uuid=uuid, gpu_index=0, user="zoë", period=now // 300 * 300 - 300,
        seconds_held=300, idle_seconds=100, first_epoch=now - 600, last_epoch=now - 300,
    )  # fmt: skip
    Hold.objects.create(
        host="node-1", gpu_uuid=uuid, gpu_index=0, user="zoë", held_since=now - 7200,
        idle_since=now - 7200, last_epoch=now, interval_seconds=10,
    )  # fmt: skip
    Notice.objects.create(
        host="node-1", gpu_uuid=uuid, gpu_index=0, user="zoë", idle_since=now - 7200, step=0,
        channel=Notice.Channel.EMAIL, status=Notice.Status.SENT, created=now - 60, sent=now - 60,
    )  # fmt: skip
    with kept_connection():
        yield


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_usage_views_conform_to_their_schema(case: schemathesis.Case, recorded: None) -> None:
    call_and_validate_window(case, "/usage/", DEFAULT_SPAN_S)
