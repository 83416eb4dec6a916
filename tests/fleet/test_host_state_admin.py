"""The host states' admin list: each host's last tick to the second, in UTC, as the API
writes times (``gpu_monitor.admin.time_column``), sortable by it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from gpu_monitor.fleet.models import HostState
from gpu_monitor.params import moment

EPOCH = 1_796_000_007  # 2026-11-30T00:53:27Z: a second that is not the minute's first
PAGE = "/admin/gpu_monitor_fleet/hoststate/"

pytestmark = pytest.mark.django_db


def column(html: str) -> list[str]:
    return re.findall(r'class="field-timestamp">([^<]*)<', html)


def test_each_hosts_last_tick_shows_its_second_in_utc(admin_client: Client) -> None:
    for host, offset in (("node-a", 0), ("node-b", 61), ("node-c", 1)):
        HostState.objects.create(
            host=host,
            epoch=EPOCH + offset,
            timestamp=moment(EPOCH + offset),
            interval_seconds=10,
            devices=[],
        )

    html = admin_client.get(PAGE).content.decode()
    by_tick = admin_client.get(f"{PAGE}?o=2").content.decode()

    assert column(html) == ["2026-11-30T00:53:27Z", "2026-11-30T00:54:28Z", "2026-11-30T00:53:28Z"]
    assert column(by_tick) == [
        "2026-11-30T00:53:27Z",
        "2026-11-30T00:53:28Z",
        "2026-11-30T00:54:28Z",
    ]
    assert "Last tick" in html
