"""GET hosts builds its items without the serializer (``hosts.summary_items``): they must
be what ``HostSummarySerializer`` renders, and a page's XID counts its own hosts'."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from rest_framework.test import APIClient

from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.serializers import HostSummarySerializer
from gpu_monitor.history.models import Event
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.params import moment
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]


def page(query: str = "") -> list[dict[str, Any]]:
    response = APIClient().get(f"/api/gpu/hosts{query}")
    assert response.status_code == 200, response.json()
    body: list[dict[str, Any]] = response.json()["results"]
    return body


def xid(host: str, epoch: int) -> None:
    Event.objects.create(host=host, epoch=epoch, timestamp=moment(epoch), kind="xid", xid=79)


def test_the_items_are_what_the_serializer_renders_in_every_state(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    fake_nvml.STATE.gpus[0].ecc_uncorrected_volatile = 3
    record("node-up")
    fake_nvml.STATE.gpus[0].ecc_uncorrected_volatile = 0
    record("node-stale", epoch=NOW - 100)
    record("node-down", epoch=NOW - 1000, interval=30)
    xid("node-up", NOW - 10)
    xid("node-down", NOW - 20)
    clock.now = NOW + 7

    listed = page()
    rows = hosts.selected(NOW + 7)
    expected = HostSummarySerializer(hosts.summaries(rows, NOW + 7), many=True).data

    assert listed == expected
    assert [list(item) for item in listed] == [list(item) for item in expected]  # key order
    # and inside each problem: PostgreSQL's jsonb gives stored keys back in an order of its own
    assert [list(p) for item in listed for p in item["problems"]] == [
        ["gpu_index", "kind", "message"]
    ]
    assert {item["state"] for item in listed} == {"up", "stale", "down"}
    assert [item["xid_24h"] for item in listed] == [1, 0, 1]  # down, stale, up


def test_a_filtered_page_counts_only_its_own_hosts_xids(record: Record, clock: Clock) -> None:
    for host in ("node-a", "node-b", "node-c"):
        record(host)
    record("node-b", epoch=NOW - 1000)  # down: left out of ?state=up, between a and c
    xid("node-b", NOW - 30)
    xid("node-b", NOW - 40)
    xid("node-c", NOW - 50)

    assert [(h["host"], h["xid_24h"]) for h in page("?state=up")] == [
        ("node-a", 0),
        ("node-c", 1),
    ]
