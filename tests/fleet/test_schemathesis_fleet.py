"""Schemathesis over GET hosts, hosts/<host> and hosts/<host>/processes: every check on.

The schema describes each parameter as the views accept it (enums, bounds, patterns),
so that valid data is never a 400 and invalid data never a 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import moment

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex="^/api/gpu/hosts/"
)
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}


@pytest.fixture
def hosts(fake_nvml: ModuleType, db: None) -> Iterator[None]:
    """Hosts in each state, one with processes, so that 200s carry data to check."""
    from gpu_monitor.fleet.hosts import now

    at = now()
    for host, age, processes in [("node-1", 5, True), ("node-2", 100, False), ("0", 9999, False)]:
        HostState.objects.create(
            host=host,
            epoch=at - age,
            timestamp=moment(at - age),
            interval_seconds=10,
            devices=[],
            processes={"processes": [], "count": 0, "gpu_errors": {}} if processes else None,
        )
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
def test_the_fleet_views_conform_to_their_schema(case: schemathesis.Case, hosts: None) -> None:
    case.validate_response(case.call())
