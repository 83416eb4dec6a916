"""On a real PostgreSQL: two recorders of one host writing the same tick at once count
it once (the upsert's condition, re-checked against the committed row)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.writer import write_usage
from tests.usage.conftest import NOW

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
UUID = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"


def context(epoch: int) -> TickContext:
    return TickContext(
        host="node-1",
        epoch=epoch,
        interval=10,
        devices={"devices": [{"index": 0, "uuid": UUID, "utilization_percent": 0}], "count": 1},
        driver=None,
        processes={
            "processes": [{"gpu_index": 0, "pid": 1, "username": "alice", "used_memory_mb": 5}]
        },
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
