"""history.store.write_pushed on its own: the caller's lock comes first in the one
transaction, and a failure writes nothing of the batch."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from django.db import OperationalError, connection

from gpu_monitor.history import store
from gpu_monitor.history.models import Event, Sample
from tests.fleet.ingest_helpers import HOST, ticks

pytestmark = pytest.mark.django_db


class Batch:
    def __init__(self, read: list[Any], dropped: int = 0) -> None:
        self.host, self.dropped, self.ticks = HOST, dropped, read


def test_the_lock_is_taken_first_inside_the_transaction(fake_nvml: ModuleType) -> None:
    seen: list[tuple[bool, int]] = []

    def lock() -> None:
        seen.append((connection.in_atomic_block, Sample.objects.count()))

    written = store.write_pushed(Batch(ticks(1000, 1010)), "default", lock)

    assert seen == [(True, 0)]
    assert written == store.Written(written=2, duplicates=0)


def test_a_failure_writes_nothing_of_the_batch(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.write_tick
    calls = []

    def second_fails(*args: Any) -> Any:
        calls.append(args[1].epoch)
        if len(calls) == 2:
            raise OperationalError("canceling statement due to statement timeout")
        return real(*args)

    monkeypatch.setattr(store, "write_tick", second_fails)

    with pytest.raises(OperationalError):
        store.write_pushed(Batch(ticks(1000, 1010), dropped=2), "default")

    assert calls == [1000, 1010]
    assert not Sample.objects.exists() and not Event.objects.exists()


def test_an_empty_batch_writes_nothing() -> None:
    assert store.write_pushed(Batch([]), "default") == store.Written(0, 0)
