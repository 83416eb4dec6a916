"""Schemathesis over GET hosts, hosts/<host> and hosts/<host>/processes: every check on.

The schema describes each parameter as the views accept it (enums, bounds, patterns),
so that valid data is never a 400 and invalid data never a 200, but for the one rule no
schema can state: a page past the last (it depends on the rows) is the 400 that names
``page``, held to every other check.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gpu_monitor.fleet.models import HostState
from gpu_monitor.params import moment
from tests.schemathesis_helper import call_and_validate_page, kept_connection, wsgi_schema

schema = wsgi_schema("^/api/gpu/hosts/")


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
    with kept_connection():
        yield


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_fleet_views_conform_to_their_schema(case: schemathesis.Case, hosts: None) -> None:
    call_and_validate_page(case)
