"""Schemathesis over GET usage and usage/idle: every check on.

The schema describes each parameter as the views accept it (enums, bounds, patterns),
so that valid data is never a 400 and invalid data never a 200. The rule no schema can
state, ``since`` before ``until``, is checked as for history: a request that breaks it
must be the 400 that names it, and is held to every other check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.views import DEFAULT_SPAN_S
from tests.unit.test_schemathesis_history import epoch_of

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex="^/api/gpu/usage/"
)
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}


@pytest.fixture
def recorded(db: None) -> Iterator[None]:
    """A row and an idle hold of now, so that 200s carry data to check."""
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
    # As Django's test client does: the test's connection (its transaction) must
    # outlive each request, which on PostgreSQL would close it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with override_settings(GPU_MONITOR=OPEN):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_usage_views_conform_to_their_schema(case: schemathesis.Case, recorded: None) -> None:
    response = case.call()
    if reversed_window(case.path, case.query or {}):
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith("since: must be before until")
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    else:
        case.validate_response(response)


def reversed_window(path: str, query: Any) -> bool:
    """A usage report with ``since`` at or after ``until`` (either may be a default)."""
    if not path.endswith("/usage/"):
        return False
    now = int(time.time())
    until = epoch_of(query.get("until"), now, now)
    if until is None:
        return False
    since = epoch_of(query.get("since"), now, until - DEFAULT_SPAN_S)
    return since is not None and since >= until
