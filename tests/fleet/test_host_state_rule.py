"""A host's state by its own interval, the same in GET hosts, hosts/<host>, ?state=, the
metrics and gpu_fleet: "stale" after more than 3 intervals without a tick, "down" once
the last tick is FLEET_DOWN_AFTER (600 s here) and 6 intervals old, whichever is later.

The edges, worked out by hand from that rule:

=========  =============  ==================  ===================
interval   up until (s)   stale from .. to    down from (s)
=========  =============  ==================  ===================
1 s *      3              4 .. 5              6 = 6 x 1
10 s       30             31 .. 599           600
60 s       180            181 .. 599          600
200 s      600            601 .. 1199         1200 = 6 x 200
900 s      2700           2701 .. 5399        5400 = 6 x 900
=========  =============  ==================  ===================

(* with FLEET_DOWN_AFTER = 1, its least value.)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from gpu_monitor.history.recorder import Recorder
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]

EDGES = [
    (10, 30, "up"),
    (10, 31, "stale"),
    (10, 599, "stale"),
    (10, 600, "down"),
    (60, 60, "up"),  # a 60 s host one interval old: stale if read at a 10 s interval
    (60, 180, "up"),
    (60, 181, "stale"),
    (60, 599, "stale"),
    (60, 600, "down"),
    (200, 600, "up"),  # FLEET_DOWN_AFTER alone made this host down, never stale
    (200, 601, "stale"),
    (200, 1199, "stale"),
    (200, 1200, "down"),
    (900, 610, "up"),  # a host recording every 15 min, 10 min after its tick
    (900, 2700, "up"),
    (900, 2701, "stale"),
    (900, 5399, "stale"),
    (900, 5400, "down"),
]


def results(query: str = "") -> list[dict[str, Any]]:
    response = APIClient().get(f"/api/gpu/hosts?page_size=1000{query}")
    assert response.status_code == 200, response.json()
    body: list[dict[str, Any]] = response.json()["results"]
    return body


@pytest.mark.parametrize(("interval", "age", "state"), EDGES)
def test_state_by_the_hosts_own_interval(
    record: Record, clock: Clock, interval: int, age: int, state: str
) -> None:
    record("node-1", epoch=NOW, interval=interval)
    clock.now = NOW + age

    (listed,) = results()
    detail = APIClient().get("/api/gpu/hosts/node-1").json()

    assert (listed["interval_seconds"], listed["age_seconds"], listed["state"]) == (
        interval,
        age,
        state,
    )
    assert (detail["age_seconds"], detail["state"]) == (age, state)
    assert [h["host"] for h in results(f"&state={state}")] == ["node-1"]


@pytest.mark.parametrize(
    ("age", "state"), [(3, "up"), (4, "stale"), (5, "stale"), (6, "down"), (7, "down")]
)
def test_stale_is_reached_at_a_one_second_interval_and_the_least_down_after(
    record: Record, clock: Clock, age: int, state: str
) -> None:
    record("node-1", epoch=NOW, interval=1)
    clock.now = NOW + age

    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 1}):
        (listed,) = results()
        filtered = results(f"&state={state}")

    assert listed["state"] == state
    assert [h["host"] for h in filtered] == ["node-1"]


def test_fleet_down_after_still_wins_when_it_is_later_than_six_intervals(
    record: Record, clock: Clock
) -> None:
    record("node-60", epoch=NOW, interval=60)
    record("node-900", epoch=NOW, interval=900)
    clock.now = NOW + 5400  # 6 x 900: both down at the default

    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 7200}):
        states = {h["host"]: h["state"] for h in results()}

    assert states == {"node-60": "stale", "node-900": "stale"}


def record_mixed_fleet(record: Record) -> dict[str, str]:
    """Hosts of 10, 60 and 900 s at ages either side of their edges, all read at NOW;
    their states worked out by hand (see the module's table)."""
    hosts = {
        ("h10-0031", 10, 31): "stale",
        ("h10-0600", 10, 600): "down",
        ("h60-0031", 60, 31): "up",
        ("h60-0181", 60, 181): "stale",
        ("h900-0610", 900, 610): "up",
        ("h900-2701", 900, 2701): "stale",
        ("h900-5400", 900, 5400): "down",
    }
    for host, interval, age in hosts:
        record(host, epoch=NOW - age, interval=interval)
    return {host: state for (host, _, _), state in hosts.items()}


def test_the_metrics_count_each_host_by_its_own_interval(
    record: Record, clock: Clock, client: Client
) -> None:
    record_mixed_fleet(record)

    with override_settings(GPU_MONITOR={"METRICS_FLEET": True}):
        body = client.get("/api/gpu/metrics").content.decode()
    counts = {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "gpu_monitor_fleet_hosts"
    }

    intervals = {
        sample.labels["host"]: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "gpu_monitor_fleet_host_interval_seconds"
    }

    assert counts == {"up": 2.0, "stale": 3.0, "down": 2.0}
    assert intervals == {
        "h10-0031": 10.0,
        "h10-0600": 10.0,
        "h60-0031": 60.0,
        "h60-0181": 60.0,
        "h900-0610": 900.0,
        "h900-2701": 900.0,
        "h900-5400": 900.0,
    }


def test_the_list_its_filter_and_the_detail_agree_on_a_mixed_fleet(
    record: Record, clock: Clock
) -> None:
    expected = record_mixed_fleet(record)

    assert {h["host"]: h["state"] for h in results()} == expected
    for state in ("up", "stale", "down"):
        filtered = [h["host"] for h in results(f"&state={state}")]
        assert filtered == sorted(h for h, s in expected.items() if s == state)
    for host, state in expected.items():
        assert APIClient().get(f"/api/gpu/hosts/{host}").json()["state"] == state


def test_gpu_fleet_shows_each_host_by_its_own_interval(record: Record, clock: Clock) -> None:
    expected = record_mixed_fleet(record)
    out = io.StringIO()
    call_command("gpu_fleet", stdout=out, no_color=True)
    as_json = io.StringIO()
    call_command("gpu_fleet", "--json", stdout=as_json, no_color=True)

    lines = out.getvalue().splitlines()
    assert lines[0] == "2 up, 3 stale, 2 down"
    assert {line.split()[0]: line.split()[1] for line in lines[2:]} == expected
    assert "h900-0610  up     10 min ago" in out.getvalue()
    assert json.loads(as_json.getvalue())["results"] == results()
