"""GET api/gpu/events across the fleet: without ?host= every host's events, newest first,
each with its host; ?host= narrows; a GPU (?gpu=) is looked up on a host."""

from __future__ import annotations

import calendar
import json
import re
import socket
import time
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from gpu_monitor.history.models import Event
from gpu_monitor.params import moment

pytestmark = pytest.mark.django_db
HOST = socket.gethostname()
T0 = 1_795_824_000
UUID = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"


def event(host: str, epoch: int, kind: str = "xid", index: int | None = 0, **extra: Any) -> Event:
    return Event(
        host=host,
        gpu_uuid=extra.pop("gpu_uuid", "" if index is None else f"{UUID[:-2]}{index:02}"),
        gpu_index=index,
        epoch=epoch,
        timestamp=moment(epoch),
        kind=kind,
        **extra,
    )


def fleet_events() -> None:
    """Three hosts whose events interleave in time; two at the same second."""
    Event.objects.bulk_create(
        [
            event("node-b", T0 + 1, xid=79),
            event(HOST, T0 + 2, "gpu_lost", 1),
            event("node-a", T0 + 3, "nvml_unavailable", None),
            event("node-b", T0 + 3, xid=48),
            event("node-a", T0 + 5, xid=13),
        ]
    )


def get(client: Client, **params: object) -> dict[str, Any]:
    response = client.get("/api/gpu/events", params)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def seen(client: Client, **params: object) -> list[tuple[str, int]]:
    """(host, Unix seconds) of each event of the answer, in its order."""
    return [
        (e["host"], calendar.timegm(time.strptime(e["timestamp"], "%Y-%m-%dT%H:%M:%SZ")))
        for e in get(client, **params)["results"]
    ]


def test_without_host_every_hosts_events_newest_first(client: Client) -> None:
    fleet_events()

    body = get(client)

    assert body["count"] == 5
    assert [(e["host"], e["kind"], e["xid"]) for e in body["results"]] == [
        ("node-a", "xid", 13),
        ("node-b", "xid", 48),  # the same second as node-a's: the later row first
        ("node-a", "nvml_unavailable", None),
        (HOST, "gpu_lost", None),
        ("node-b", "xid", 79),
    ]


def test_an_empty_host_is_the_whole_fleet(client: Client) -> None:
    fleet_events()

    assert seen(client, host="") == seen(client)
    assert len(seen(client, host="")) == 5


def test_host_narrows(client: Client) -> None:
    fleet_events()

    assert seen(client, host="node-b") == [("node-b", T0 + 3), ("node-b", T0 + 1)]
    assert seen(client, host="node-b", kind="gpu_lost") == []  # known, nothing: a 200
    # A host that never recorded (a typo) is a 404 that names it (issue 32).
    assert client.get("/api/gpu/events", {"host": "nowhere"}).status_code == 404


def test_since_and_kind_apply_to_the_fleet(client: Client) -> None:
    fleet_events()
    since = moment(T0 + 3).isoformat().replace("+00:00", "Z")

    assert seen(client, since=since) == [
        ("node-a", T0 + 5),
        ("node-b", T0 + 3),
        ("node-a", T0 + 3),
    ]
    assert seen(client, since=since, kind="xid") == [("node-a", T0 + 5), ("node-b", T0 + 3)]
    assert seen(client, kind="gpu_lost") == [(HOST, T0 + 2)]


def test_a_gpu_without_host_is_this_servers(client: Client) -> None:
    """An index names a GPU on one host: ``gpu`` alone keeps this server's host."""
    fleet_events()
    Event.objects.bulk_create([event("node-a", T0 + 9, "gpu_lost", 1)])

    assert seen(client, gpu="1") == [(HOST, T0 + 2)]
    assert seen(client, gpu="1", host="node-a") == [("node-a", T0 + 9)]
    assert client.get("/api/gpu/events", {"gpu": "0"}).status_code == 404  # not on HOST


def test_fleet_pages(client: Client) -> None:
    Event.objects.bulk_create(
        [event(f"node-{i % 7}", T0 + i, xid=i) for i in range(250)],
    )

    first = get(client, page_size=100)
    third = get(client, page_size=100, page=3)

    assert first["count"] == 250
    assert [e["xid"] for e in first["results"][:3]] == [249, 248, 247]
    assert [e["xid"] for e in third["results"]] == list(range(49, -1, -1))
    assert first["next"] is not None and third["next"] is None


def test_bad_host_is_still_a_400(client: Client) -> None:
    response = client.get("/api/gpu/events", {"host": "h" * 256})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("host: longer than 255 characters")


def test_the_fleets_events_are_read_along_the_time_index(client: Client) -> None:
    """Newest first over every host: the (timestamp) index gives the order, no sort of
    the whole table (the host's own query has its (host, epoch) index)."""
    fleet_events()
    with CaptureQueriesContext(connection) as queries:
        assert get(client, page_size=2)["count"] == 5
    (page_sql,) = [q["sql"] for q in queries if "ORDER BY" in q["sql"]]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {page_sql}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {page_sql}")
        plan = "\n".join(str(row) for row in cursor.fetchall())

    assert "gpu_history_event_time" in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan  # SQLite: no sort of every row


def test_the_nodes_dashboard_shows_this_hosts_events(fake_nvml: ModuleType, client: Client) -> None:
    """The dashboard's page asks for this server's history and events (config.host): on
    a database shared by a fleet, the other hosts' events are not this node's."""
    response = client.get("/api/gpu/dashboard", HTTP_ACCEPT="text/html")
    found = re.search(
        rb'<script id="gpu-monitor-config" type="application/json">(.*?)</script>',
        response.content,
    )

    assert found, response.content[:500]
    assert json.loads(found.group(1))["host"] == HOST


@pytest.mark.skipif(not settings.OPENAPI, reason="drf-spectacular is not installed")
def test_the_schema_says_host_defaults_to_every_host(client: Client) -> None:
    schema = client.get("/api/schema/?format=json").json()

    def host_help(path: str) -> str:
        parameters = schema["paths"][path]["get"]["parameters"]
        (host,) = [p for p in parameters if p["name"] == "host"]
        description: str = host["description"]
        return description

    assert "default: every host's events" in host_help("/api/gpu/events/")
    assert "default: this server's" in host_help("/api/gpu/history/")
