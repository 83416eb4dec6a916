"""On a real PostgreSQL: two recorders of one host writing the same tick at once count
it once (the upsert's condition, re-checked against the committed row); the tick writer
needs no more than a node's role grants (SELECT, INSERT, UPDATE)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings

from gpu_monitor.history.models import Event
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.types import GPUDevice, GPUProcess, GPUProcessesResponse
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.writer import write_usage
from tests.usage.conftest import NOW

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
UUID = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"


def context(epoch: int, users: tuple[str, ...] = ("alice",)) -> TickContext:
    processes = [
        GPUProcess(
            gpu_index=0, gpu_uuid=None, pid=1, type="compute", used_memory_mb=5, username=user
        )
        for user in users
    ]
    return TickContext(
        host="node-1",
        epoch=epoch,
        interval=10,
        devices=[GPUDevice(index=0, name="GPU", uuid=UUID, utilization_percent=0)],
        driver=None,
        processes=GPUProcessesResponse(processes, len(processes), {}),
    )


def test_two_recorders_writing_one_tick_at_once_count_it_once() -> None:
    written = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                write_usage(context(NOW + 10), "default")
                written.set()
                threading.Event().wait(0.3)  # the second one waits on our row meanwhile
        except BaseException as exc:
            errors.append(exc)
        finally:
            written.set()
            connections.close_all()

    def second() -> None:
        try:
            written.wait(5)
            with transaction.atomic():
                write_usage(context(NOW + 10), "default")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert list(Usage.objects.values_list("seconds_held", "idle_seconds")) == [(10, 10)]
    assert list(Hold.objects.values_list("user", "last_epoch")) == [("alice", NOW + 10)]


@pytest.mark.django_db  # one transaction, rolled back: the role goes with it
def test_a_user_leaving_and_coming_back_needs_only_a_nodes_grants() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE gpu_usage_test_node")
        cursor.execute(
            "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO gpu_usage_test_node;"
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gpu_usage_test_node;"
            "SET ROLE gpu_usage_test_node"
        )
    try:  # a savepoint: a refused statement is shown, not hidden by the RESET's error
        with transaction.atomic(), override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 1}):
            for tick in range(1, 8):
                write_usage(context(NOW + 10 * tick), "default")  # idle_held at tick 6
            write_usage(context(NOW + 80, ()), "default")  # alice left: ended
            write_usage(context(NOW + 90), "default")  # back: a new hold
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")

    events = list(Event.objects.order_by("epoch").values_list("kind", "epoch"))
    assert events == [("idle_held", NOW + 60), ("idle_held_ended", NOW + 80)]
    hold = Hold.objects.values_list("held_since", "last_epoch", "ended_epoch")
    assert list(hold) == [(NOW + 80, NOW + 90, None)]
