"""POST api/gpu/ingest: a pushed body is written once, and every fault has its answer
(docs/api.md)."""

from __future__ import annotations

from types import ModuleType

import pytest
from django.core.cache import cache

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.models import Event, Sample
from tests.fleet.ingest_helpers import HOST, body, post, ticks, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle_history() -> None:
    cache.clear()  # the throttle's counts


def test_a_pushed_body_is_written_and_answered(fake_nvml: ModuleType) -> None:
    token = token_for()

    response = post(body(ticks(1000, 1010)), token)

    assert response.status_code == 200, response.content
    assert response.json() == {"host": HOST, "written": 2, "duplicates": 0}
    assert sorted(set(Sample.objects.values_list("epoch", flat=True))) == [1000, 1010]
    assert Sample.objects.filter(host=HOST).count() == 2 * len(fake_nvml.STATE.gpus)
    assert HostState.objects.get().epoch == 1010


def test_a_replayed_body_counts_once(fake_nvml: ModuleType) -> None:
    token = token_for()
    sent = body(ticks(1000, 1010), dropped=3)
    post(sent, token)
    rows = (Sample.objects.count(), Event.objects.count())

    again = post(sent, token)

    assert again.status_code == 200
    assert again.json() == {"host": HOST, "written": 0, "duplicates": 2}
    assert (Sample.objects.count(), Event.objects.count()) == rows
    assert Event.objects.filter(kind=Event.Kind.SAMPLES_DROPPED).count() == 1


def test_a_body_that_overlaps_the_last_writes_only_its_new_ticks(fake_nvml: ModuleType) -> None:
    token = token_for()
    read = ticks(1000, 1010, 1020)
    post(body(read[:2]), token)

    response = post(body(read, dropped=2), token)

    assert response.json() == {"host": HOST, "written": 1, "duplicates": 2}
    # the dropped ticks came before the body's first tick, written the first time: no event
    assert not Event.objects.filter(kind=Event.Kind.SAMPLES_DROPPED).exists()
    assert sorted(set(Sample.objects.values_list("epoch", flat=True))) == [1000, 1010, 1020]


def test_dropped_ticks_are_one_event_that_names_the_site(fake_nvml: ModuleType) -> None:
    post(body(ticks(1000), dropped=5), token_for())

    dropped = Event.objects.get(kind=Event.Kind.SAMPLES_DROPPED)
    assert dropped.epoch == 1000
    assert dropped.message == (
        "5 tick(s) dropped: the site was unreachable for longer than the node's buffer"
    )


def test_an_older_tick_than_the_hosts_newest_is_a_duplicate(fake_nvml: ModuleType) -> None:
    token = token_for()
    post(body(ticks(2000)), token)

    response = post(body(ticks(1000)), token)

    assert response.json()["duplicates"] == 1
    assert HostState.objects.get().epoch == 2000  # the host's state does not go back


def test_periods_that_are_over_are_rolled_up(fake_nvml: ModuleType) -> None:
    from gpu_monitor.history.models import Rollup

    token = token_for()
    post(body(ticks(1200, 1210)), token)
    assert not Rollup.objects.exists()  # the period 1200-1500 is not over

    post(body(ticks(1500)), token)

    assert set(Rollup.objects.values_list("epoch", flat=True)) == {1200}
    assert Rollup.objects.count() == len(fake_nvml.STATE.gpus)


def test_the_write_lock_is_the_transaction_s_first_statement(fake_nvml: ModuleType) -> None:
    """Another worker's push waits for this one's write lock (PostgreSQL: the host's
    token rows FOR UPDATE; SQLite: an UPDATE that changes nothing takes the database's
    write lock): a read first would make SQLite fail the later write at once with
    "database is locked", a 503 (the example site under gunicorn, 4 workers and 6 nodes
    pushing every second: 23 in 45 s before)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = token_for()
    with CaptureQueriesContext(connection) as queries:
        response = post(body(ticks(1000)), token)

    assert response.status_code == 200, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    first = next(i for i, sql in enumerate(statements) if sql.startswith(("BEGIN", "SAVEPOINT")))
    lock = next(s for s in statements[first + 1 :] if not s.startswith("SET LOCAL"))
    assert '"gpu_monitor_host_token"' in lock
    if connection.vendor == "sqlite":
        assert lock.startswith(
            'UPDATE "gpu_monitor_host_token" SET "host" = "gpu_monitor_host_token"."host"'
        )
    else:
        assert lock.startswith("SELECT") and lock.endswith("FOR UPDATE")
