"""GET api/gpu/hosts, hosts/<host>, hosts/<host>/processes: from the database only."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.models import Event
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.host import HIDDEN
from gpu_monitor.params import moment
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]


def get(path: str, client: Client | None = None) -> Any:
    response = (client or APIClient()).get(f"/api/gpu/{path}")
    assert response["Content-Type"] == "application/json"
    return response


def results(path: str = "hosts") -> list[dict[str, Any]]:
    response = get(path)
    assert response.status_code == 200, response.json()
    body: list[dict[str, Any]] = response.json()["results"]
    return body


def test_a_host_is_summed_up(fake_nvml: ModuleType, record: Record, clock: Clock) -> None:
    gpus = fake_nvml.STATE.gpus
    gpus[0].utilization_gpu, gpus[1].utilization_gpu = 20, 81
    gpus[0].temperature, gpus[1].temperature = 40, 71
    gpus[0].used_v2, gpus[1].used_v2 = 1000 * 1048576, 3000 * 1048576
    record("node-1")
    clock.now = NOW + 7

    (host,) = results()

    assert host == {
        "host": "node-1",
        "last_seen": moment(NOW).isoformat().replace("+00:00", "Z"),
        "age_seconds": 7,
        "state": "up",
        "interval_seconds": 10,
        "gpu_count": 2,
        "utilization_percent": 50.5,
        "used_memory_mb": 4000,
        "total_memory_mb": 2 * 81559,
        "max_temperature_c": 71,
        "problems": [],
        "xid_24h": 0,
    }


def test_problems_are_one_entry_per_gpu_and_condition(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    gpu = fake_nvml.STATE.gpus[1]
    gpu.ecc_uncorrected_volatile, gpu.clocks_event_reasons = 2, 0x40  # hw_thermal_slowdown
    record("node-1")

    (host,) = results()

    assert host["problems"] == [
        {"gpu_index": 1, "kind": "uncorrected_ecc", "message": "2 uncorrected ECC error(s)"},
        {
            "gpu_index": 1,
            "kind": "hardware_slowdown",
            "message": "hardware slowdown (hw_thermal_slowdown)",
        },
    ]


def test_a_gpu_that_does_not_answer_is_a_problem_as_the_health_check_says(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    # The health check fails on a lost GPU: GET hosts?problem=1 must find its host.
    fake_nvml.configure(gpus=2, scenario="lost")
    record("node-lost")
    fake_nvml.configure(gpus=2)
    record("node-fine")

    (host,) = results("hosts?problem=1")

    assert host["host"] == "node-lost"
    assert host["problems"] == [
        {"gpu_index": 1, "kind": "gpu_unavailable", "message": "GPU is lost"}
    ]


def test_xid_24h_counts_the_hosts_xids_of_the_last_day(record: Record, clock: Clock) -> None:
    record("node-1")
    record("node-2")
    for host, epoch, xid in [
        ("node-1", NOW - 100, 79),
        ("node-1", NOW - 200, 48),
        ("node-1", NOW - 86400 - 1, 31),  # older than a day
        ("node-2", NOW - 5, 79),
    ]:
        Event.objects.create(host=host, epoch=epoch, timestamp=moment(epoch), kind="xid", xid=xid)
    Event.objects.create(host="node-1", epoch=NOW, timestamp=moment(NOW), kind="gpu_lost")

    assert [(h["host"], h["xid_24h"]) for h in results()] == [("node-1", 2), ("node-2", 1)]


@pytest.mark.parametrize(
    ("age", "state"),
    [(0, "up"), (30, "up"), (31, "stale"), (599, "stale"), (600, "down"), (10**6, "down")],
)
def test_state_from_the_age_of_the_last_tick(
    record: Record, clock: Clock, age: int, state: str
) -> None:
    record("node-1", interval=10)
    clock.now = NOW + age

    (host,) = results()

    assert (host["age_seconds"], host["state"]) == (age, state)


def test_a_host_goes_stale_then_down_then_up_again(record: Record, clock: Clock) -> None:
    recorder = record("node-1", interval=60)
    seen = []
    for age in (60, 181, 600):
        clock.now = NOW + age
        seen.append(results()[0]["state"])
    recorder.tick(NOW + 600)
    seen.append(results()[0]["state"])

    assert seen == ["up", "stale", "down", "up"]


def test_down_after_follows_the_setting(record: Record, clock: Clock) -> None:
    record("node-1", interval=10)
    seen = []
    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 100}):
        for age in (99, 100):
            clock.now = NOW + age
            seen.append(results()[0]["state"])
        clock.now = NOW + 59  # a setting under 6 intervals: down at 6 intervals
        with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 20}):
            seen.append(results()[0]["state"])
            clock.now = NOW + 60
            seen.append(results()[0]["state"])

    assert seen == ["stale", "down", "stale", "down"]


def test_hosts_are_sorted_and_filtered(fake_nvml: ModuleType, record: Record, clock: Clock) -> None:
    record("gpu-b", epoch=NOW)
    record("gpu-a", epoch=NOW - 100)  # stale
    record("cpu-c", epoch=NOW - 1000)  # down
    fake_nvml.STATE.gpus[0].ecc_uncorrected_volatile = 1
    record("GPU-D", epoch=NOW)

    assert [h["host"] for h in results()] == ["GPU-D", "cpu-c", "gpu-a", "gpu-b"]
    assert [h["host"] for h in results("hosts?state=up")] == ["GPU-D", "gpu-b"]
    assert [h["host"] for h in results("hosts?state=stale")] == ["gpu-a"]
    assert [h["host"] for h in results("hosts?state=down")] == ["cpu-c"]
    assert [h["host"] for h in results("hosts?problem=1")] == ["GPU-D"]
    assert [h["host"] for h in results("hosts?problem=0")] == ["cpu-c", "gpu-a", "gpu-b"]
    assert [h["host"] for h in results("hosts?q=gpu-")] == ["GPU-D", "gpu-a", "gpu-b"]
    assert [h["host"] for h in results("hosts?q=gpu&state=up&problem=0")] == ["gpu-b"]
    assert results("hosts?q=nothing") == []


def test_hosts_are_paginated(record: Record, clock: Clock) -> None:
    for n in range(5):
        record(f"node-{n}")

    first = get("hosts?page_size=2").json()
    last = get("hosts?page_size=2&page=3").json()

    assert first["count"] == 5
    assert [h["host"] for h in first["results"]] == ["node-0", "node-1"]
    assert first["next"].endswith("/api/gpu/hosts?page=2&page_size=2")
    assert first["previous"] is None
    assert [h["host"] for h in last["results"]] == ["node-4"]
    assert last["next"] is None


def test_the_default_page_is_500_hosts(record: Record, clock: Clock) -> None:
    for n in range(3):
        record(f"node-{n}")
    HostState.objects.bulk_create(
        HostState(
            host=f"z{n:04}",
            epoch=NOW,
            timestamp=moment(NOW),
            interval_seconds=10,
            devices=[],
        )
        for n in range(500)
    )

    body = get("hosts").json()

    assert (body["count"], len(body["results"])) == (503, 500)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("state=sleeping", "state: one of up, stale, down, not 'sleeping'"),
        ("state=UP", "state: one of up, stale, down, not 'UP'"),
        ("problem=yes", "problem: 1 or 0, not 'yes'"),
        ("page_size=0", "page_size: a whole number from 1 to 1000, not '0'"),
        ("page_size=1001", "page_size: a whole number from 1 to 1000, not '1001'"),
        (f"q={'x' * 256}", "q: longer than 255 characters"),
        ("q=a%00b", "q: contains a NUL character"),
    ],
)
def test_bad_parameters_are_400_naming_them(record: Record, query: str, says: str) -> None:
    record("node-1")

    response = get(f"hosts?{query}")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(says)


def test_a_page_past_the_last_is_400_naming_page(record: Record) -> None:
    record("node-1")

    response = get("hosts?page=2")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("page: ")


def test_no_host_yet_is_an_empty_page() -> None:
    assert get("hosts").json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_a_host_detail_gives_the_devices_as_the_node_api_did(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    record("node-1")
    node_api = get("devices").json()  # this test process is the node too
    clock.now = NOW + 40

    body = get("hosts/node-1").json()

    assert body == {
        "host": "node-1",
        "recorded_at": moment(NOW).isoformat().replace("+00:00", "Z"),
        "age_seconds": 40,
        "state": "stale",
        "interval_seconds": 10,
        "driver": {
            "driver_version": "580.159.04",
            "cuda_driver_version": "13.0",
            "nvml_version": "13.580.159.04",
        },
        **node_api,
    }
    assert get("hosts/node-1/").json() == body


def test_an_unknown_host_is_404_naming_it(record: Record, admin_client: Client) -> None:
    record("node-1")

    for path in ("hosts/node-9", "hosts/node-9/processes"):
        response = get(path, admin_client)
        assert response.status_code == 404
        assert "No host 'node-9' has recorded" in response.json()["detail"]


def test_a_host_name_longer_than_255_is_400(record: Record, admin_client: Client) -> None:
    long = "h" * 256
    for path in (f"hosts/{long}", f"hosts/{long}/processes"):
        response = get(path, admin_client)
        assert response.status_code == 400
        assert response.json()["detail"].startswith("host: longer than 255 characters")


def test_processes_need_the_process_permission(record: Record, admin_client: Client) -> None:
    record("node-1", processes=True)

    assert get("hosts/node-1/processes").status_code == 403
    assert get("hosts/node-1/processes", admin_client).status_code == 200


def test_processes_hide_command_lines_unless_the_site_shows_them(
    fake_nvml: ModuleType, record: Record, admin_client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    record("node-1", processes=True)
    state = HostState.objects.get()
    for process in state.processes["processes"]:  # a node that shows command lines
        process["command_line"], process["field_errors"] = ["python", "train.py"], {}
    state.save()

    with override_settings(GPU_MONITOR={"PROCESS_COMMAND_LINE": True}):
        shown = get("hosts/node-1/processes", admin_client).json()
    hidden = get("hosts/node-1/processes", admin_client).json()

    assert shown["host"] == "node-1"
    assert shown["count"] == len(shown["processes"]) > 0
    assert all(p["command_line"] == ["python", "train.py"] for p in shown["processes"])
    assert hidden["count"] == shown["count"]
    assert all(p["command_line"] is None for p in hidden["processes"])
    assert all(p["field_errors"] == {"command_line": HIDDEN} for p in hidden["processes"])


def test_a_host_without_recorded_processes_is_404_saying_how(
    record: Record, admin_client: Client
) -> None:
    record("node-1")

    response = get("hosts/node-1/processes", admin_client)

    assert response.status_code == 404
    assert "gpu_record --processes" in response.json()["detail"]


def test_the_central_site_needs_no_nvml(
    fake_nvml: ModuleType, record: Record, clock: Clock, admin_client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    record("node-1", processes=True)
    fake_nvml.configure(scenario="no_nvml")  # the central site: no driver at all
    fake_nvml.CALLS.clear()

    assert [h["gpu_count"] for h in results()] == [2]
    assert len(get("hosts/node-1").json()["devices"]) == 2
    assert get("hosts/node-1/processes", admin_client).json()["count"] > 0
    assert sum(fake_nvml.CALLS.values()) == 0


def test_a_misconfigured_setting_closes_the_fleet_views(record: Record) -> None:
    record("node-1")
    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 0}):
        for path in ("hosts", "hosts/node-1", "hosts/node-1/processes"):
            response = get(path)
            assert response.status_code == 503
            assert "FLEET_DOWN_AFTER" in response.json()["detail"]


def test_other_methods_are_405(record: Record) -> None:
    record("node-1")

    assert APIClient().post("/api/gpu/hosts").status_code == 405
    assert APIClient().delete("/api/gpu/hosts/node-1").status_code == 405


def test_the_state_filter_agrees_with_each_hosts_state(record: Record, clock: Clock) -> None:
    for interval in (10, 60, 200, 900):
        for age in (0, 29, 30, 31, 179, 180, 181, 599, 600, 601, 1199, 1200, 2701, 5400):
            record(f"h{interval}-{age:04}", epoch=NOW - age, interval=interval)

    every = {h["host"]: h["state"] for h in results("hosts?page_size=1000")}

    assert set(every.values()) == {"up", "stale", "down"}
    for state in ("up", "stale", "down"):
        filtered = {h["host"] for h in results(f"hosts?state={state}&page_size=1000")}
        assert filtered == {host for host, s in every.items() if s == state}


def test_the_list_reads_the_summaries_not_the_devices_in_a_fixed_number_of_queries(
    record: Record, clock: Clock
) -> None:
    for n in range(3):
        record(f"node-{n}")
    with CaptureQueriesContext(connection) as few:
        get("hosts?page_size=2")
    for n in range(3, 30):
        record(f"node-{n}")
    with CaptureQueriesContext(connection) as many:
        get("hosts?page_size=20")

    assert len(many) == len(few)
    reads = [q["sql"] for q in many if "gpu_monitor_fleet_hoststate" in q["sql"]]
    assert reads and not any('"devices"' in sql for sql in reads)
