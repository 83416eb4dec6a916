"""``GET usage/idle``'s ``notified``: how often ``gpu_notify`` told each idle GPU's
holder about this idle run, read from the notify sub-app's ``Notice`` rows in one query
for the whole list; null, and the endpoint unchanged otherwise, without that sub-app."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client, modify_settings
from django.test.utils import CaptureQueriesContext

from gpu_monitor.notify.models import Notice
from gpu_monitor.params import iso
from gpu_monitor.usage.models import Hold

pytestmark = pytest.mark.django_db
UUID = "GPU-3a34af56-e2e8-164a-8e46-{:012x}"
WITHOUT_NOTIFY = modify_settings(INSTALLED_APPS={"remove": ["gpu_monitor.notify"]})


def hold(user: str, gpu: int, idle_for: int = 7200) -> Hold:
    now = int(time.time())
    return Hold.objects.create(
        host="node-1", gpu_uuid=UUID.format(gpu), gpu_index=gpu, user=user,
        held_since=now - idle_for - 600, idle_since=now - idle_for, last_epoch=now - 5,
        interval_seconds=10, memory_mb=512,
    )  # fmt: skip


def notice(held: Hold, step: int, sent: int | None, **fields: Any) -> Notice:
    """A notice about ``held``'s idle run (``sent``: Unix seconds; None: not sent)."""
    values: dict[str, Any] = {
        "channel": Notice.Channel.EMAIL,
        "status": Notice.Status.SENT if sent else Notice.Status.FAILED,
        "idle_since": held.idle_since,
    }
    return Notice.objects.create(
        host=held.host, gpu_uuid=held.gpu_uuid, gpu_index=held.gpu_index, user=held.user,
        step=step, created=sent or int(time.time()), sent=sent, **{**values, **fields},
    )  # fmt: skip


def idle(client: Client) -> list[dict[str, Any]]:
    response = client.get("/api/gpu/usage/idle", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    gpus: list[dict[str, Any]] = response.json()["gpus"]
    return gpus


def test_each_idle_gpu_says_how_often_its_holder_was_told(admin_client: Client) -> None:
    now = int(time.time())
    alice, bob = hold("alice", 0), hold("bob", 1)
    hold("carol", 2)
    notice(alice, 0, now - 5000)
    notice(alice, 0, now - 4990, channel=Notice.Channel.WEBHOOK)  # one step, two channels
    notice(alice, 1, now - 600)
    notice(alice, 2, None)  # failed: not told
    notice(alice, 3, None, status=Notice.Status.SENDING)  # claimed, never sent
    notice(alice, 0, now - 99_000, idle_since=(alice.idle_since or 0) - 90_000)  # an old run
    notice(bob, 0, None, status=Notice.Status.NO_ADDRESS)
    notice(bob, 1, None)

    gpus = idle(admin_client)

    assert [(g["user"], g["notified"]) for g in gpus] == [
        ("alice", {"count": 2, "last": iso(now - 600)}),
        ("bob", {"count": 0, "last": None}),
        ("carol", {"count": 0, "last": None}),
    ]


def test_without_the_notify_app_notified_is_null(admin_client: Client) -> None:
    notice(hold("alice", 0), 0, int(time.time()) - 60)

    with WITHOUT_NOTIFY:
        gpus = idle(admin_client)

    assert [(g["user"], g["notified"]) for g in gpus] == [("alice", None)]
    assert "notified" in gpus[0]  # the field is always there


def notice_queries(client: Client) -> tuple[int, int]:
    """The queries of one ``GET usage/idle``: all of them, and those of the notices."""
    with CaptureQueriesContext(connection) as queries:
        idle(client)
    return len(queries), sum(Notice._meta.db_table in q["sql"] for q in queries)


def test_the_notices_cost_one_query_whatever_the_number_of_gpus(admin_client: Client) -> None:
    first = hold("alice", 0)
    notice(first, 0, int(time.time()) - 60)
    few = notice_queries(admin_client)
    for gpu in range(1, 12):
        notice(hold(f"user-{gpu}", gpu), 0, int(time.time()) - 60)

    many = notice_queries(admin_client)

    assert few == many
    assert many[1] == 1
    with WITHOUT_NOTIFY:
        assert notice_queries(admin_client) == (many[0] - 1, 0)


def test_a_long_list_is_one_query(admin_client: Client) -> None:
    # An OR per episode would pass SQLite's expression depth limit (1000) here.
    now = int(time.time())
    holds = [hold(f"user-{gpu}", gpu) for gpu in range(1200)]
    for n, held in enumerate(holds[::400]):
        notice(held, 0, now - 100 - n)
    other = Hold(host="node-2", gpu_uuid=UUID.format(0), gpu_index=0, user="user-0")
    other.idle_since = holds[0].idle_since  # another host's run since then: not asked
    notice(other, 0, now - 50)

    assert notice_queries(admin_client)[1] == 1
    counts = [g["notified"]["count"] for g in idle(admin_client)]
    assert [n for n, count in enumerate(counts) if count] == [0, 400, 800]


def test_gpu_usage_idle_shows_a_notified_column_with_the_app_only() -> None:
    notice(hold("alice", 0), 1, int(time.time()) - 60)
    notice(hold("bob", 1), 0, None)

    out = io.StringIO()
    call_command("gpu_usage", "--idle", stdout=out)
    with WITHOUT_NOTIFY:
        plain = io.StringIO()
        call_command("gpu_usage", "--idle", stdout=plain)

    title, alice, bob = out.getvalue().splitlines()[1:]
    assert title.split()[-2:] == ["Notified", "UUID"]
    assert "1x, last 20" in alice
    assert bob.split()[-2] == "no"
    assert "Notified" not in plain.getvalue()
