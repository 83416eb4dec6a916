"""GET api/gpu/history and api/gpu/events against samples in the real test database."""

from __future__ import annotations

import importlib
import socket
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import clear_url_caches

from gpu_monitor.history.models import Event, Sample
from gpu_monitor.params import moment

pytestmark = pytest.mark.django_db
HOST = socket.gethostname()
UUID0 = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
UUID1 = "GPU-3a34af56-e2e8-164a-8e46-000000000001"
T0 = 1_795_824_000  # 2026-11-28T00:00:00Z, a multiple of every step below


def sample(epoch: int, index: int = 0, host: str = HOST, **values: object) -> Sample:
    fields: dict[str, object] = {
        "host": host,
        "gpu_uuid": UUID0 if index == 0 else UUID1,
        "gpu_index": index,
        "name": "NVIDIA H100 80GB HBM3",
        "epoch": epoch,
        "timestamp": moment(epoch),
        "utilization_percent": 50,
        "used_memory_mb": 1000,
        "total_memory_mb": 81559,
        "temperature_c": 40,
        "power_draw_w": 100.0,
    }
    fields.update(values)
    return Sample(**fields)


def history(client: Client, **params: object) -> dict[str, object]:
    response = client.get("/api/gpu/history", params)
    assert response.status_code == 200, response.content
    body: dict[str, object] = response.json()
    return body


def test_buckets_average_and_maximum_in_the_database(client: Client) -> None:
    Sample.objects.bulk_create(
        [
            sample(T0, utilization_percent=10, temperature_c=40, power_draw_w=100.0),
            sample(T0 + 10, utilization_percent=30, temperature_c=45, power_draw_w=200.0),
            sample(T0 + 20, utilization_percent=80, used_memory_mb=5000, temperature_c=50),
            # T0 + 30 .. T0 + 59: nothing (a gap)
            sample(T0 + 60, utilization_percent=0, temperature_c=39),
        ]
    )

    body = history(client, since=T0_iso(0), until=T0_iso(90), points=3)

    assert body["host"] == HOST
    assert (body["since"], body["until"], body["step_seconds"]) == (
        "2026-11-28T00:00:00Z",
        "2026-11-28T00:01:30Z",
        30,
    )
    (series,) = body["series"]  # type: ignore[misc]
    assert series["gpu_uuid"] == UUID0 and series["gpu_index"] == 0
    assert series["t"] == [T0, T0 + 30, T0 + 60]
    assert series["utilization_percent"] == [40.0, None, 0.0]  # avg of 10, 30, 80; a gap
    assert series["utilization_percent_max"] == [80, None, 0]
    assert series["used_memory_mb"] == [5000, None, 1000]  # max
    assert series["total_memory_mb"] == [81559, None, 81559]
    assert series["temperature_c"] == [50, None, 39]  # max
    assert series["power_draw_w"] == [133.33, None, 100.0]  # avg


def T0_iso(offset: int) -> str:
    return moment(T0 + offset).isoformat()


def test_one_series_per_gpu_sorted_by_index(client: Client) -> None:
    Sample.objects.bulk_create([sample(T0, 1), sample(T0, 0), sample(T0 + 10, 1)])

    body = history(client, since=T0_iso(0), until=T0_iso(60), points=6)

    series = body["series"]
    assert [s["gpu_index"] for s in series] == [0, 1]  # type: ignore[attr-defined, index]
    assert series[1]["utilization_percent"] == [50.0, 50.0, None, None, None, None]  # type: ignore[index]


def test_gpu_by_index_or_uuid(client: Client) -> None:
    Sample.objects.bulk_create([sample(T0, 0), sample(T0, 1)])

    by_index = history(client, gpu="1", since=T0_iso(0), until=T0_iso(60))
    by_uuid = history(client, gpu=UUID1, since=T0_iso(0), until=T0_iso(60))

    assert by_index == by_uuid
    assert [s["gpu_uuid"] for s in by_index["series"]] == [UUID1]  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("gpu", ["7", "GPU-00000000-0000-0000-0000-000000000000", "nope"])
def test_unknown_gpu_is_404(client: Client, gpu: str) -> None:
    Sample.objects.bulk_create([sample(T0)])

    response = client.get("/api/gpu/history", {"gpu": gpu})

    assert response.status_code == 404
    assert "recorded on host" in response.json()["detail"]


def test_default_is_the_last_hour_of_this_host(client: Client) -> None:
    now = int(time.time())
    Sample.objects.bulk_create(
        [sample(now - 30), sample(now - 7200), sample(now - 30, host="elsewhere")]
    )

    body = history(client)

    # 3600 s in at most 300 buckets aligned on multiples of the step: 12 s when the hour
    # starts on a multiple of 12, else 13 s (a 301st bucket would be needed).
    assert body["step_seconds"] in (12, 13)
    (series,) = body["series"]  # type: ignore[misc]
    assert len(series["t"]) <= 300
    assert series["t"][0] <= int(time.time()) - 3600 < series["t"][0] + body["step_seconds"]
    assert sum(v is not None for v in series["utilization_percent"]) == 1


def test_relative_times_and_host(client: Client) -> None:
    now = int(time.time())
    Sample.objects.bulk_create([sample(now - 3 * 86400, host="b"), sample(now - 60, host="b")])

    body = history(client, host="b", since="-7d", until="now", points=7)

    (series,) = body["series"]  # type: ignore[misc]
    assert body["step_seconds"] >= 86400
    assert sum(v is not None for v in series["utilization_percent"]) == 2


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"points": "0"}, "points"),
        ({"points": "2001"}, "points"),
        ({"points": "x"}, "points"),
        ({"points": "9" * 5000}, "points"),
        ({"since": "yesterday"}, "since"),
        ({"since": "-1y"}, "since"),
        ({"until": "2026-13-45T00:00:00"}, "until"),
        ({"since": "-99999999w"}, "since"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"since": "now", "until": "-1h"}, "since"),
        ({"host": "h" * 300}, "host"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    client: Client, params: dict[str, str], named: str
) -> None:
    response = client.get("/api/gpu/history", params)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{named}: ")


def test_downsampling_is_one_query_whatever_the_samples(client: Client) -> None:
    Sample.objects.bulk_create(
        [sample(T0 + 10 * i, index) for i in range(2000) for index in (0, 1)]
    )
    with CaptureQueriesContext(connection) as queries:
        body = history(client, since=T0_iso(0), until=T0_iso(20000), points=100)

    aggregate = [q["sql"] for q in queries if "GROUP BY" in q["sql"]]
    assert len(aggregate) == 1
    assert len(queries) == 2  # the aggregate, and the GPUs' names
    assert [len(s["t"]) for s in body["series"]] == [100, 100]  # type: ignore[attr-defined, index]


def test_history_follows_the_permission_settings(client: Client) -> None:
    with override_settings(
        GPU_MONITOR={
            "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
        }
    ):
        assert client.get("/api/gpu/history").status_code == 403
        assert client.get("/api/gpu/events").status_code == 403


# -- events ---------------------------------------------------------------------------


def event(epoch: int, kind: str = "xid", index: int | None = 0, **extra: object) -> Event:
    return Event(
        host=extra.pop("host", HOST),  # type: ignore[arg-type]
        gpu_uuid=extra.pop("gpu_uuid", "" if index is None else (UUID0 if index == 0 else UUID1)),  # type: ignore[arg-type]
        gpu_index=index,
        epoch=epoch,
        timestamp=moment(epoch),
        kind=kind,
        **extra,
    )


def test_events_newest_first_and_paginated(client: Client) -> None:
    Event.objects.bulk_create([event(T0 + i, xid=i) for i in range(150)])

    first = client.get("/api/gpu/events").json()
    second = client.get("/api/gpu/events", {"page": 2}).json()

    assert first["count"] == 150
    assert [e["xid"] for e in first["results"][:3]] == [149, 148, 147]
    assert len(first["results"]) == 100 and len(second["results"]) == 50
    assert first["results"][0] == {
        "host": HOST,
        "gpu_uuid": UUID0,
        "gpu_index": 0,
        "timestamp": "2026-11-28T00:02:29Z",
        "kind": "xid",
        "xid": 149,
        "message": "",
    }


def test_events_filters(client: Client) -> None:
    Event.objects.bulk_create(
        [
            event(T0, "gpu_lost", 1, message="GPU is lost"),
            event(T0 + 5, "xid", 0, xid=79),
            event(T0 + 9, "nvml_unavailable", None),
            event(T0 + 20, "xid", 0, xid=48, host="elsewhere"),
        ]
    )

    def kinds(**params: object) -> list[str]:
        response = client.get("/api/gpu/events", params)
        assert response.status_code == 200, response.content
        return [e["kind"] for e in response.json()["results"]]

    assert kinds() == ["xid", "nvml_unavailable", "xid", "gpu_lost"]  # every host's
    assert kinds(host=HOST) == ["nvml_unavailable", "xid", "gpu_lost"]
    assert kinds(kind="xid", host=HOST) == ["xid"]
    assert kinds(gpu="1") == ["gpu_lost"]
    assert kinds(gpu=UUID0) == ["xid"]
    assert kinds(since=T0_iso(5), host=HOST) == ["nvml_unavailable", "xid"]
    assert kinds(host="elsewhere") == ["xid"]


@pytest.mark.parametrize(
    ("params", "status"),
    [({"kind": "nope"}, 400), ({"since": "x"}, 400), ({"gpu": "9"}, 404), ({"page": "99"}, 400)],
)
def test_events_bad_parameters(client: Client, params: dict[str, str], status: int) -> None:
    Event.objects.bulk_create([event(T0)])

    response = client.get("/api/gpu/events", params)

    assert response.status_code == status
    assert list(response.json()) == ["detail"]


# -- a project without the sub-app ----------------------------------------------------


@pytest.fixture
def without_history() -> Iterator[None]:
    from django.conf import settings

    # They need history (notify needs usage).
    needing_it = (
        "gpu_monitor.history",
        "gpu_monitor.fleet",
        "gpu_monitor.usage",
        "gpu_monitor.notify",
    )
    apps = [app for app in settings.INSTALLED_APPS if app not in needing_it]
    with override_settings(INSTALLED_APPS=apps):
        reload_urls()
        yield
    reload_urls()


def reload_urls() -> None:
    import gpu_monitor.urls
    import tests.urls

    importlib.reload(gpu_monitor.urls)
    importlib.reload(tests.urls)
    clear_url_caches()


@pytest.mark.parametrize("path", ["/api/gpu/history", "/api/gpu/events/"])
def test_without_the_sub_app_404_says_how_to_add_it(
    fake_nvml: ModuleType, client: Client, without_history: None, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert "add 'gpu_monitor.history' to INSTALLED_APPS" in response.json()["detail"]
    assert client.get("/api/gpu/devices").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_tables_not_migrated_is_a_json_503(client: Client) -> None:
    with connection.schema_editor() as editor:
        editor.delete_model(Sample)
    try:
        response = client.get("/api/gpu/history")
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(Sample)

    assert response.status_code == 503
    assert "run manage.py migrate" in response.json()["detail"]


def test_long_windows_read_the_rollups_and_the_samples_after_them(client: Client) -> None:
    """The same answer from rollups (plus the samples after the last one) as from the
    samples alone, with one query on each table whatever the number of samples."""
    from gpu_monitor.history.aggregate import roll_up
    from gpu_monitor.history.models import Rollup

    Sample.objects.bulk_create(
        [
            sample(
                T0 + 10 * i,
                g,
                utilization_percent=(i * 7 + g) % 101,
                temperature_c=30 + i % 40,
                power_draw_w=50.0 + i % 9,
                used_memory_mb=i,
            )
            for i in range(720)  # two hours of 10 s ticks
            for g in (0, 1)
        ]
    )
    params = {"since": T0_iso(0), "until": T0_iso(7200), "points": 12}  # 600 s buckets
    from_samples_only = history(client, **params)
    roll_up(HOST, T0, T0 + 6600)  # every period but the last: it is not over
    with CaptureQueriesContext(connection) as queries:
        from_rollups = history(client, **params)

    assert from_rollups == from_samples_only
    assert Rollup.objects.count() == 2 * 22
    sql = " ".join(q["sql"] for q in queries)
    assert "gpu_monitor_history_rollup" in sql
    assert from_rollups["step_seconds"] == 600


def test_rollup_steps_are_whole_periods(client: Client) -> None:
    from gpu_monitor.history.aggregate import roll_up

    Sample.objects.bulk_create([sample(T0 + 10 * i) for i in range(8640)])  # a day
    roll_up(HOST, T0, T0 + 86400)

    body = history(client, since=T0_iso(0), until=T0_iso(86400), points=100)

    assert body["step_seconds"] == 900  # 864 s rounded up to whole 300 s periods
    (series,) = body["series"]  # type: ignore[misc]
    assert len(series["t"]) == 96
    assert series["utilization_percent"][0] == 50.0


@pytest.mark.parametrize("since", range(0, 24))
def test_buckets_never_exceed_points_whatever_the_alignment(since: int) -> None:
    from gpu_monitor.history.views import plan_buckets

    step, first, last = plan_buckets(T0 + since, T0 + since + 3600, 300)

    assert step in (12, 13)
    assert last - first + 1 <= 300
    assert first * step <= T0 + since and (last + 1) * step >= T0 + since + 3600


# -- one GPU, one answer: index, UUID, MIG device, samples or events (issue 18 item 5) --

UUID3 = "GPU-3a34af56-e2e8-164a-8e46-000000000003"


def lost(epoch: int, index: int, uuid: str = "") -> Event:
    """A gpu_lost event as the recorder writes it when it never read the GPU's UUID."""
    return Event(
        host=HOST,
        gpu_uuid=uuid,
        gpu_index=index,
        epoch=epoch,
        timestamp=moment(epoch),
        kind="gpu_lost",
        message="GPU is lost",
    )


def results(client: Client, path: str, **params: object) -> tuple[int, object]:
    response = client.get(path, params)
    body = response.json()
    return response.status_code, body.get("results", body.get("series", body))


def test_a_gpu_known_only_from_its_events_is_found_by_index(client: Client) -> None:
    Sample.objects.bulk_create([sample(T0, 0)])
    Event.objects.bulk_create([lost(T0 + 5, 3), event(T0 + 6, "nvml_unavailable", None)])

    listed = client.get("/api/gpu/events").json()["results"]
    status, only_3 = results(client, "/api/gpu/events", gpu="3")
    history_status, series = results(client, "/api/gpu/history", gpu="3", since=T0_iso(0))

    assert [(e["kind"], e["gpu_index"]) for e in listed] == [
        ("nvml_unavailable", None),
        ("gpu_lost", 3),
    ]
    assert status == 200
    assert [(e["kind"], e["gpu_index"]) for e in only_3] == [("gpu_lost", 3)]  # type: ignore[attr-defined]
    assert (history_status, series) == (200, [])  # no sample: no series


def test_index_and_uuid_list_the_same_events_of_a_gpu(client: Client) -> None:
    """Events recorded with the UUID, and with only the index (lost before the recorder
    read the UUID after a restart), belong to the same GPU whichever way it is named."""
    Sample.objects.bulk_create([sample(T0, 0), sample(T0, 1)])
    Event.objects.bulk_create(
        [
            event(T0 + 1, "xid", 1, xid=79),
            lost(T0 + 2, 1),  # after a restart, before its UUID was read
            event(T0 + 3, "xid", 0, xid=48),
            lost(T0 + 4, 3),  # another GPU, never seen with a UUID
        ]
    )

    by_index = results(client, "/api/gpu/events", gpu="1")
    by_uuid = results(client, "/api/gpu/events", gpu=UUID1)

    assert by_index == by_uuid
    assert [e["kind"] for e in by_uuid[1]] == ["gpu_lost", "xid"]  # type: ignore[attr-defined]


def test_a_gpu_known_by_uuid_from_its_events_only(client: Client) -> None:
    Event.objects.bulk_create([event(T0, "xid", 1, xid=13)])

    assert results(client, "/api/gpu/events", gpu=UUID1)[0] == 200
    assert results(client, "/api/gpu/events", gpu="1")[0] == 200
    assert results(client, "/api/gpu/history", gpu=UUID1, since=T0_iso(0)) == (200, [])


@pytest.mark.parametrize("path", ["/api/gpu/history", "/api/gpu/events"])
def test_a_mig_device_names_the_gpu_that_holds_it(
    fake_nvml: ModuleType, client: Client, path: str
) -> None:
    from gpu_monitor.manager import get_manager

    fake_nvml.configure(gpus=2, scenario="mig")
    (index, parent, mig) = next(
        (d.index, d.uuid, d.mig_devices[0].uuid)
        for d in get_manager().get_devices()
        if d.mig_devices
    )
    other = 1 - index
    Sample.objects.bulk_create(
        [sample(T0 + 10 * i, index, gpu_uuid=parent, utilization_percent=i) for i in range(6)]
        + [sample(T0, other, gpu_uuid=UUID3)]
    )
    Event.objects.bulk_create(
        [
            event(T0 + 1, "xid", other, xid=79, gpu_uuid=UUID3),
            event(T0 + 2, "xid", index, xid=31, gpu_uuid=parent),
            lost(T0 + 3, index),
        ]
    )
    window = {"since": T0_iso(0), "until": T0_iso(60)}

    by_mig = results(client, path, gpu=mig, **window)
    by_uuid = results(client, path, gpu=parent, **window)
    by_index = results(client, path, gpu=str(index), **window)

    assert by_mig == by_uuid == by_index
    assert by_mig[0] == 200
    assert len(by_mig[1]) == (1 if path.endswith("history") else 2)  # type: ignore[arg-type]
    assert {item["gpu_uuid"] for item in by_mig[1]} <= {parent, ""}  # type: ignore[attr-defined]


def test_a_mig_device_without_nvml_is_a_404_that_says_why(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(scenario="no_nvml")
    Sample.objects.bulk_create([sample(T0, 0)])

    response = client.get("/api/gpu/history", {"gpu": "MIG-00000000-0000-0000-0000-000000000000"})

    assert response.status_code == 404
    assert "recorded per GPU; use the GPU's index or UUID" in response.json()["detail"]


# -- rollups: never counted twice (issue 18 items 6 and 15) ----------------------------


def ramp(start: int, end: int) -> list[Sample]:
    """10 s samples whose utilisation and power change every sample, so that counting
    any part of a bucket twice moves its average."""
    return [
        sample(epoch, utilization_percent=(epoch // 10) % 97, power_draw_w=float(epoch % 130))
        for epoch in range(start, end, 10)
    ]


def averages(start: int, end: int, step: int) -> list[float]:
    """The expected utilisation average of each ``step`` bucket, from the samples."""
    values = {epoch: (epoch // 10) % 97 for epoch in range(start, end, 10)}
    return [
        round(sum(v for e, v in values.items() if b <= e < b + step) / (step // 10), 1)
        for b in range(start, end, step)
    ]


def test_a_window_starting_inside_a_bucket_counts_no_sample_twice(client: Client) -> None:
    """``since`` 100 s into a 600 s bucket: the first bucket comes from whole rollups, the
    last from samples after the last rollup, and none of them from both."""
    from gpu_monitor.history.aggregate import roll_up

    Sample.objects.bulk_create(ramp(T0, T0 + 1800))
    roll_up(HOST, T0, T0 + 900)  # three periods: the boundary is inside the second bucket

    body = history(client, since=T0_iso(100), until=T0_iso(1800), points=3)

    assert body["step_seconds"] == 600
    (series,) = body["series"]  # type: ignore[misc]
    assert series["t"] == [T0, T0 + 600, T0 + 1200]
    assert series["utilization_percent"] == averages(T0, T0 + 1800, 600)


def test_a_period_rolled_up_during_the_query_is_counted_once(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpu_record rolls a period up between the two reads of a history request: the
    answer is the one before, not that period twice."""
    from gpu_monitor.history import views
    from gpu_monitor.history.aggregate import roll_up, rolled_up_until

    Sample.objects.bulk_create(ramp(T0, T0 + 1800))
    roll_up(HOST, T0, T0 + 1200)
    params = {"since": T0_iso(0), "until": T0_iso(1800), "points": 3}
    before = history(client, **params)

    def boundary_then_roll_up(host: str, using: str | None = None) -> int | None:
        boundary = rolled_up_until(host, using)
        roll_up(HOST, T0 + 1200, T0 + 1500)  # the recorder, between the two reads
        return boundary

    monkeypatch.setattr(views, "rolled_up_until", boundary_then_roll_up)
    during = history(client, **params)

    assert during == before
    assert before["series"][0]["utilization_percent"] == averages(T0, T0 + 1800, 600)  # type: ignore[index]


# -- queries --------------------------------------------------------------------------


def test_names_of_gpus_missing_from_the_last_tick_cost_no_extra_query(
    client: Client, django_assert_num_queries: Any
) -> None:
    """One aggregate and one identity query, whichever GPUs the last tick left out; each
    GPU is named as at its own latest sample."""
    Sample.objects.bulk_create(
        [
            sample(T0, 0),
            sample(T0, 1, name="old name"),
            sample(T0 + 10, 1),  # GPU 1's latest: index 1
            sample(T0 + 20, 5, gpu_uuid=UUID3, name="NVIDIA A100"),
            sample(T0 + 30, 0),  # the last tick: only GPU 0
        ]
    )

    with django_assert_num_queries(2):
        body = history(client, since=T0_iso(0), until=T0_iso(60), points=6)

    identities = [(s["gpu_uuid"], s["gpu_index"], s["name"]) for s in body["series"]]  # type: ignore[attr-defined]
    assert identities == [
        (UUID0, 0, "NVIDIA H100 80GB HBM3"),
        (UUID1, 1, "NVIDIA H100 80GB HBM3"),
        (UUID3, 5, "NVIDIA A100"),
    ]


def test_history_views_use_no_assert_for_control_flow() -> None:
    """``python -O`` strips asserts: the views must check with real statements."""
    import ast
    import inspect

    from gpu_monitor.history import aggregate, views

    for module in (views, aggregate):
        tree = ast.parse(inspect.getsource(module))
        assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]


@pytest.mark.parametrize("page_size", ["0", "1001", "x", ""])
def test_events_page_size_out_of_range_is_400(client: Client, page_size: str) -> None:
    response = client.get("/api/gpu/events", {"page_size": page_size})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("page_size: ")


@pytest.mark.parametrize("page", ["", "0", "x", "last", "-1"])
def test_events_page_not_a_whole_number_from_1_is_400(client: Client, page: str) -> None:
    Event.objects.bulk_create([event(T0)])

    response = client.get("/api/gpu/events", {"page": page})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("page: ")


def test_events_page_size_within_range(client: Client) -> None:
    Event.objects.bulk_create([event(T0 + i, xid=i) for i in range(5)])

    body = client.get("/api/gpu/events", {"page_size": "2"}).json()

    assert [e["xid"] for e in body["results"]] == [4, 3]


def test_a_host_with_a_nul_character_is_400(client: Client) -> None:
    response = client.get("/api/gpu/history", {"host": "a\x00b"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("host: ")
