"""GET api/gpu/usage and usage/idle: the report over the usage tables, its parameters
and who may read it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from gpu_monitor.params import iso
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.report import usage_report
from tests.usage.conftest import Script

pytestmark = pytest.mark.django_db
UUID = "GPU-3a34af56-e2e8-164a-8e46-{:012x}"


def usage(user: str, *, host: str = "node-1", gpu: int = 0, ago: int = 3600, **sums: int) -> Usage:
    """A period row ``ago`` seconds before now: an hour held unless ``sums`` say else."""
    period = (int(time.time()) - ago) // 300 * 300
    values = {"seconds_held": 3600, "first_epoch": period + 10, "last_epoch": period + 300}
    return Usage.objects.create(
        host=host,
        gpu_uuid=UUID.format(gpu),
        gpu_index=gpu,
        user=user,
        period=period,
        **{**values, **sums},
    )


def get(path: str, client: Client | None = None) -> Any:
    response = (client or APIClient()).get(f"/api/gpu/{path}")
    assert response["Content-Type"] == "application/json"
    return response


def ok(path: str, client: Client) -> dict[str, Any]:
    response = get(path, client)
    assert response.status_code == 200, response.json()
    body: dict[str, Any] = response.json()
    return body


def test_the_report_sums_a_users_rows_in_api_units(admin_client: Client) -> None:
    usage("alice", seconds_held=1800, idle_seconds=600, shared_seconds=300,
          utilization_sum=1800 * 40, utilization_seconds=1800, max_memory_mb=1000,
          memory_mib_seconds=1800 * 1000)  # fmt: skip
    usage("alice", gpu=1, ago=7200, seconds_held=1800, utilization_sum=1800 * 80,
          utilization_seconds=1800, max_memory_mb=3000, memory_mib_seconds=1800 * 3000)  # fmt: skip

    body = ok("usage", admin_client)

    (alice,) = body["rows"]
    assert alice == {
        "user": "alice",
        "host": None,
        "gpu_uuid": None,
        "gpu_index": None,
        "gpu_hours": 1.0,
        "idle_gpu_hours": round(600 / 3600, 3),
        "active_gpu_hours": round(3000 / 3600, 3),
        "shared_gpu_hours": round(300 / 3600, 3),
        "utilization_percent": 60.0,
        "max_memory_mb": 3000,
        "memory_gib_hours": round(1800 * 4000 / 1024 / 3600, 3),
        "first_seen": iso(Usage.objects.order_by("first_epoch")[0].first_epoch),
        "last_seen": iso(Usage.objects.order_by("-last_epoch")[0].last_epoch),
    }
    assert body["total"] == {**alice, "user": None}
    assert body["by"] == "user"


def test_the_window_is_the_last_seven_days_by_default(admin_client: Client) -> None:
    usage("recent", ago=6 * 86400)
    usage("old", ago=8 * 86400)

    body = ok("usage", admin_client)

    assert [row["user"] for row in body["rows"]] == ["recent"]
    now = int(time.time())
    # The window counted: whole five-minute periods, from the one holding now less 7 days.
    starts = {(now - 7 * 86400 - lag) // 300 * 300 for lag in (0, 1)}
    assert body["since"] in {iso(start) for start in starts}


def test_since_and_until_select_whole_periods(admin_client: Client) -> None:
    row = usage("alice", ago=86400)
    since, until = iso(row.period + 299), iso(row.period + 300)  # inside the period; its end

    rows = ok(f"usage?since={since}&until={until}", admin_client)["rows"]
    assert [r["user"] for r in rows] == ["alice"]
    assert ok(f"usage?since={until}&until=now", admin_client)["rows"] == []


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("host", {"host": "node-2", "user": None, "gpu_uuid": None, "gpu_index": None}),
        ("gpu", {"host": "node-2", "user": None, "gpu_uuid": UUID.format(3), "gpu_index": 3}),
        ("host,user", {"host": "node-2", "user": "bob", "gpu_uuid": None, "gpu_index": None}),
    ],
)
def test_by_groups_the_rows_most_gpu_hours_first(
    admin_client: Client, by: str, keys: dict[str, Any]
) -> None:
    usage("alice", host="node-1", gpu=0)
    usage("bob", host="node-2", gpu=3, seconds_held=7200)

    rows = ok(f"usage?by={by}", admin_client)["rows"]

    assert {key: rows[0][key] for key in keys} == keys
    assert [row["gpu_hours"] for row in rows] == [2.0, 1.0]


def test_gpus_with_equal_hours_are_listed_by_host_and_index_as_nvidia_smi_lists_them(
    admin_client: Client,
) -> None:
    # UUIDs sort in no useful order: GPU 0's may come after GPU 3's.
    for gpu, uuid in [(0, "GPU-f"), (1, "GPU-a"), (2, "GPU-c"), (3, "GPU-b")]:
        row = usage("alice", gpu=gpu)
        Usage.objects.filter(pk=row.pk).update(gpu_uuid=uuid)
    usage("bob", host="node-0", gpu=7)

    rows = ok("usage?by=gpu", admin_client)["rows"]

    assert [(r["host"], r["gpu_index"]) for r in rows] == [
        ("node-0", 7),
        ("node-1", 0),
        ("node-1", 1),
        ("node-1", 2),
        ("node-1", 3),
    ]


def test_host_and_user_filter_the_rows(admin_client: Client) -> None:
    usage("alice", host="node-1")
    usage("alice", host="node-2", seconds_held=60)
    usage("bob", host="node-1")

    rows = ok("usage?host=node-1&user=alice&by=host,user", admin_client)["rows"]
    assert [(r["host"], r["user"], r["gpu_hours"]) for r in rows] == [("node-1", "alice", 1.0)]


def test_user_names_are_given_back_as_they_are(admin_client: Client) -> None:
    name = 'Zoë <b>&amp; "ünïcode"\' ' + "x" * 200
    usage(name)

    rows = ok("usage", admin_client)["rows"]
    assert [row["user"] for row in rows] == [name]


def test_the_report_is_one_query(admin_client: Client) -> None:
    for n in range(5):
        usage(f"user-{n}", gpu=n)
    with CaptureQueriesContext(connection) as queries:
        body = usage_report(since=0, until=int(time.time()) + 1, by="user")

    assert len(body["rows"]) == 5
    assert len(queries) == 1


def test_a_bad_by_is_an_error_of_the_report_too() -> None:
    with pytest.raises(ValueError, match="by: one of user, host, gpu, host,user"):
        usage_report(since=0, until=1, by="team")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("usage?by=team", "by"),
        ("usage?by=user,host", "by"),
        ("usage?since=yesterday", "since"),
        ("usage?until=2026-13-01", "until"),
        ("usage?since=now", "since"),  # not before until
        ("usage?user=" + "x" * 256, "user"),
        ("usage?host=a%00b", "host"),
        ("usage/idle?minutes=0", "minutes"),
        ("usage/idle?minutes=10081", "minutes"),
        ("usage/idle?minutes=1.5", "minutes"),
        ("usage/idle?minutes=" + "9" * 5000, "minutes"),
        ("usage/idle?minutes=", "minutes"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    admin_client: Client, query: str, parameter: str
) -> None:
    response = get(query, admin_client)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{parameter}: ")


def test_anonymous_clients_and_non_admins_are_refused(client: Client) -> None:
    usage("alice")
    User.objects.create_user("alice", password="pw")
    assert get("usage").status_code in (401, 403)
    assert get("usage/idle").status_code in (401, 403)
    client.login(username="alice", password="pw")

    response = get("usage", client)

    assert response.status_code == 403
    assert "alice" not in response.content.decode()


@override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True})
def test_self_service_shows_a_signed_in_user_their_own_rows_only(client: Client) -> None:
    usage("alice")
    usage("bob", seconds_held=7200)
    hold("alice", gpu=0)
    hold("bob", gpu=1)
    User.objects.create_user("alice", password="pw")
    client.login(username="alice", password="pw")

    rows = ok("usage?by=host,user", client)["rows"]
    gpus = ok("usage/idle?minutes=60", client)["gpus"]

    assert [(row["user"], row["gpu_hours"]) for row in rows] == [("alice", 1.0)]
    assert [gpu["user"] for gpu in gpus] == ["alice"]
    assert get("usage?user=bob", client).status_code == 403
    assert get("usage").status_code in (401, 403)  # anonymous: still refused


@override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": True})
def test_self_service_gives_admins_everyone(admin_client: Client) -> None:
    usage("alice")
    usage("bob")

    assert {row["user"] for row in ok("usage", admin_client)["rows"]} == {"alice", "bob"}


@override_settings(GPU_MONITOR={"USAGE_SELF_SERVICE": "yes"})
def test_a_misconfigured_self_service_fails_closed(client: Client) -> None:
    User.objects.create_user("alice", password="pw")
    client.login(username="alice", password="pw")

    assert get("usage", client).status_code == 503


def test_only_get(admin_client: Client) -> None:
    response = admin_client.post("/api/gpu/usage")

    assert response.status_code == 405
    assert "GET" in response["Allow"]


def hold(user: str, *, gpu: int = 0, idle_for: int = 3600, seen_ago: int = 5) -> Hold:
    now = int(time.time())
    return Hold.objects.create(
        host="node-1",
        gpu_uuid=UUID.format(gpu),
        gpu_index=gpu,
        user=user,
        held_since=now - idle_for - 600,
        idle_since=now - idle_for,
        last_epoch=now - seen_ago,
        interval_seconds=10,
        memory_mb=512,
    )


def test_idle_lists_holds_idle_for_the_minutes_and_seen_at_the_last_ticks(
    admin_client: Client,
) -> None:
    since = hold("alice", gpu=0, idle_for=3700).idle_since
    hold("bob", gpu=1, idle_for=1800)  # idle for 30 minutes only
    hold("carol", gpu=2, idle_for=7200, seen_ago=60)  # not seen for 6 intervals: gone
    Hold.objects.create(
        host="node-1", gpu_uuid=UUID.format(3), gpu_index=3, user="dave",
        held_since=0, idle_since=None, last_epoch=int(time.time()), interval_seconds=10,
    )  # fmt: skip

    body = ok("usage/idle", admin_client)

    assert body == {
        "minutes": 60,
        "gpus": [
            {
                "host": "node-1",
                "gpu_index": 0,
                "gpu_uuid": UUID.format(0),
                "user": "alice",
                "idle_since": iso(since or 0),
                "memory_mb": 512,
                "notified": {"count": 0, "last": None},  # never told (tests/usage/test_notified.py)
            }
        ],
    }
    assert [gpu["user"] for gpu in ok("usage/idle?minutes=30", admin_client)["gpus"]] == [
        "alice",
        "bob",
    ]


def test_idle_after_recorded_ticks(script: Script, admin_client: Client) -> None:
    script.epoch = int(time.time()) // 10 * 10 - 20 * 60 - 10
    script.users[1] = [("alice", 700)]
    script.utilization(1, 0)
    script.tick(120)  # 20 minutes idle, up to now

    gpus = ok("usage/idle?minutes=20", admin_client)["gpus"]
    assert [(g["gpu_index"], g["user"], g["memory_mb"]) for g in gpus] == [(1, "alice", 700)]
    assert ok("usage/idle?minutes=21", admin_client)["gpus"] == []


def test_idle_leaves_out_a_hold_that_ended_at_the_last_tick(
    script: Script, admin_client: Client
) -> None:
    script.epoch = int(time.time()) // 10 * 10 - 20 * 60 - 10
    script.users[1] = [("alice", 700)]
    script.utilization(1, 0)
    script.tick(120)  # 20 minutes idle, up to now
    listed = [g["user"] for g in ok("usage/idle?minutes=20", admin_client)["gpus"]]
    script.users.clear()
    script.tick()  # alice left: her hold ended (kept, seen at the last ticks)

    assert listed == ["alice"]
    assert ok("usage/idle?minutes=20", admin_client)["gpus"] == []


class Broken:
    def has_permission(self, request: Any, view: Any) -> bool:
        raise RuntimeError("the directory is down")


@override_settings(GPU_MONITOR={"PROCESS_PERMISSION_CLASSES": ["tests.usage.test_api.Broken"]})
def test_a_failing_permission_class_is_a_503_never_a_500(admin_client: Client) -> None:
    response = get("usage", admin_client)

    assert response.status_code == 503
    assert "RuntimeError" in response.json()["detail"]


@override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 1})
def test_idle_held_is_listed_by_get_events_without_the_users_name(script: Script) -> None:
    script.epoch = int(time.time()) // 10 * 10 - 100
    script.users[0] = [("alice", 10)]
    script.utilization(0, 0)
    script.tick(6)

    response = get("events?kind=idle_held&host=node-1")

    assert response.status_code == 200, response.json()
    (event,) = response.json()["results"]
    assert (event["kind"], event["gpu_index"]) == ("idle_held", 0)
    assert "alice" not in response.content.decode()


def test_idle_without_minutes_follows_the_usage_idle_minutes_setting(
    admin_client: Client,
) -> None:
    # The same threshold as the idle_held events: a site that sets 30 minutes lists
    # the GPUs held idle for 30 minutes without asking for them.
    hold("alice", gpu=0, idle_for=3700)
    hold("bob", gpu=1, idle_for=1900)

    with override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 30}):
        body = ok("usage/idle", admin_client)

    assert body["minutes"] == 30
    assert [gpu["user"] for gpu in body["gpus"]] == ["alice", "bob"]
