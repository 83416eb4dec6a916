"""The sub-apps' admin lists: times to the second, in UTC, as the API writes them
(``gpu_monitor.admin.time_column``)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from gpu_monitor.history.models import Event, Sample
from gpu_monitor.params import moment
from gpu_monitor.usage.models import Hold, Usage

EPOCH = 1_796_000_007  # 2026-11-30T00:53:27Z: a second that is not the minute's first

pytestmark = pytest.mark.django_db


def column(html: str, field: str) -> list[str]:
    return re.findall(rf'class="field-{field}">(?:<a href="[^"]*">)?([^<]*)<', html)


def test_samples_and_events_show_their_second_in_utc(admin_client: Client) -> None:
    Sample.objects.create(
        host="node-a", gpu_uuid="GPU-0", gpu_index=0, epoch=EPOCH, timestamp=moment(EPOCH)
    )
    Event.objects.create(host="node-a", epoch=EPOCH, timestamp=moment(EPOCH), kind="xid", xid=79)

    for page in ("sample", "event"):
        html = admin_client.get(f"/admin/gpu_monitor_history/{page}/").content.decode()
        assert column(html, "timestamp") == ["2026-11-30T00:53:27Z"], page


def test_the_time_column_sorts_by_its_field(admin_client: Client) -> None:
    for offset in (0, 60, 1):
        epoch = EPOCH + offset
        Sample.objects.create(
            host="node-a", gpu_uuid="GPU-0", gpu_index=0, epoch=epoch, timestamp=moment(epoch)
        )

    html = admin_client.get("/admin/gpu_monitor_history/sample/?o=0").content.decode()

    assert column(html, "timestamp") == [
        "2026-11-30T00:53:27Z",
        "2026-11-30T00:53:28Z",
        "2026-11-30T00:54:27Z",
    ]


def test_usage_rows_and_holds_show_times_not_unix_seconds(admin_client: Client) -> None:
    period = EPOCH - EPOCH % 300
    Usage.objects.create(
        host="node-a",
        gpu_uuid="GPU-0",
        gpu_index=0,
        user="alice",
        period=period,
        seconds_held=60,
        idle_seconds=0,
        first_epoch=EPOCH,
        last_epoch=EPOCH,
    )
    Hold.objects.create(
        host="node-a",
        gpu_uuid="GPU-0",
        gpu_index=0,
        user="alice",
        held_since=EPOCH - 5,
        last_epoch=EPOCH,
        interval_seconds=5,
    )

    usage = admin_client.get("/admin/gpu_monitor_usage/usage/").content.decode()
    holds = admin_client.get("/admin/gpu_monitor_usage/hold/").content.decode()

    assert column(usage, "period") == ["2026-11-30T00:50:00Z"]
    assert column(holds, "held_since") == ["2026-11-30T00:53:22Z"]
    assert column(holds, "last_epoch") == ["2026-11-30T00:53:27Z"]
    assert column(holds, "idle_since") == column(holds, "ended_epoch") == ["-"]
    assert "Last tick" in holds
