"""GET hosts/<host> and hosts/<host>/processes give the stored devices, driver and
processes with their keys in the order the node's own API wrote them, on every database:
PostgreSQL's jsonb stores an object's keys in an order of its own (shorter keys first)
and gives them back so; SQLite keeps them as written. These tests run in both passes of
scripts/test and failed on PostgreSQL before ``hosts.in_field_order``."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import Recorder
from tests.fleet.conftest import Clock
from tests.history.conftest import on_postgres

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]
DRIVER_KEYS = ["driver_version", "cuda_driver_version", "nvml_version"]


def keys(items: list[dict[str, Any]]) -> list[list[str]]:
    return [list(item) for item in items]


def get(path: str, client: Any = None) -> Any:
    response = (client or APIClient()).get(f"/api/gpu/{path}", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("scenario", ["healthy", "mig", "lost"])
def test_the_devices_and_driver_keep_the_node_apis_key_order(
    fake_nvml: ModuleType, record: Record, clock: Clock, scenario: str
) -> None:
    fake_nvml.configure(gpus=2, scenario=scenario)
    record("node-1")
    node = get("devices")  # this test process is the node too
    node_driver = get("driver")

    detail = get("hosts/node-1")

    assert detail["devices"] == node["devices"]
    assert keys(detail["devices"]) == keys(node["devices"])
    assert [keys(d["mig_devices"]) for d in detail["devices"]] == [
        keys(d["mig_devices"]) for d in node["devices"]
    ]
    assert list(detail["driver"]) == list(node_driver) == DRIVER_KEYS


def test_the_processes_keep_the_node_apis_key_order(
    fake_nvml: ModuleType, record: Record, clock: Clock, admin_client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    record("node-1", processes=True)
    node = get("processes", admin_client)

    stored = get("hosts/node-1/processes", admin_client)

    assert stored["count"] == node["count"] > 0
    assert keys(stored["processes"]) == keys(node["processes"])


def test_a_key_the_node_declares_not_stays_after_the_known_ones(
    record: Record, clock: Clock
) -> None:
    record("node-1")
    row = HostState.objects.get()
    row.devices = [{"zz_newer_field": 1, **device} for device in row.devices]
    row.save()

    (device,) = get("hosts/node-1")["devices"][:1]

    assert list(device)[-1] == "zz_newer_field"
    assert list(device)[:2] == ["index", "name"]


@pytest.mark.postgres
def test_postgresql_gives_stored_keys_back_in_its_own_order(record: Record) -> None:
    """What the tests above guard against: the raw row's keys are not the node's order."""
    assert on_postgres()
    record("node-1")
    row = HostState.objects.get()

    assert list(row.driver) != DRIVER_KEYS
    assert list(row.devices[0])[:2] != ["index", "name"]
