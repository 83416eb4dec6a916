"""The recorder when the server ends a connection that worked: one more try at once on a
new connection, before it is an outage. Here the loss is staged on the test database (a
write raises, the connection no longer answers); tests/history/
test_recorder_reconnect_postgres.py ends a real backend."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from django.db import OperationalError, ProgrammingError, connection

from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager

pytestmark = pytest.mark.django_db(transaction=True)
LOST = "terminating connection due to administrator command"


def make() -> Recorder:
    return Recorder(
        GPUManager(), host="node-1", interval=10, retention_s=7 * 86400, buffer_ticks=360
    )


def epochs() -> list[int]:
    return sorted(set(Sample.objects.values_list("epoch", flat=True)))


class FailingWrites:
    """Stands in for write_tick: the next ``failures`` calls raise ``error`` (and, when
    ``lose`` is set, the connection stops answering until it is closed: a new one
    answers); later calls write. Counts the connection's closes."""

    def __init__(self, recorder: Recorder, failures: int, error: Exception, lose: bool) -> None:
        self.real: Callable[[Tick], None] = recorder.writer.write_tick
        self.close_connection: Callable[[], None] = recorder.writer.db.close
        self.failures, self.error, self.lose = failures, error, lose
        self.calls = self.closes = 0
        self.answers = True

    def __call__(self, tick: Tick) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            self.answers = not self.lose
            raise self.error
        self.real(tick)

    def is_usable(self) -> bool:
        return self.answers

    def close(self) -> None:
        self.closes += 1
        self.close_connection()  # on SQLite in memory, the same connection stays
        self.answers = True


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FailingWrites]:
    """Stage the next writes of a recorder to fail."""

    def stage(
        recorder: Recorder, failures: int = 1, error: Exception | None = None, lose: bool = True
    ) -> FailingWrites:
        writes = FailingWrites(recorder, failures, error or OperationalError(LOST), lose)
        monkeypatch.setattr(recorder.writer, "write_tick", writes)
        monkeypatch.setattr(recorder.writer.db, "is_usable", writes.is_usable)
        monkeypatch.setattr(recorder.writer.db, "close", writes.close)
        return writes

    return stage


def test_a_lost_connection_that_served_a_write_is_replaced_and_the_tick_written_at_once(
    fake_nvml: ModuleType,
    staged: Callable[..., FailingWrites],
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = make()
    recorder.tick(1000)
    writes = staged(recorder)

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.history"):
        recorder.tick(1010)

    assert epochs() == [1000, 1010]  # at its own tick, not the next one
    assert writes.calls == 2 and writes.closes == 1
    assert recorder.unwritten() == 0 and not recorder.writer.database_down
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert caplog.records[0].getMessage() == (
        f"Database connection lost ({LOST}): writing again on a new one"
    )


def test_a_second_failure_on_the_new_connection_is_an_outage_and_not_retried_again(
    fake_nvml: ModuleType,
    staged: Callable[..., FailingWrites],
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = make()
    recorder.tick(1000)
    writes = staged(recorder, failures=2)

    with caplog.at_level(logging.INFO, logger="gpu_monitor.history"):
        recorder.tick(1010)
        tried = writes.calls
        recorder.tick(1020)

    assert tried == 2 and writes.closes == 2  # the retry; then, the outage's close
    said = [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records]
    assert said == [
        ("INFO", "Database connection lost (terminating connection due to administrator command)"),
        ("ERROR", "Database unreachable, keeping up to 360 tick(s) in memory"),
        ("WARNING", "Database reachable again"),
    ]
    assert epochs() == [1000, 1010, 1020]  # 1010 kept in the buffer, written with 1020


def test_a_failure_on_a_connection_that_never_served_a_write_is_an_outage_at_once(
    fake_nvml: ModuleType, staged: Callable[..., FailingWrites], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = make()
    writes = staged(recorder)

    with caplog.at_level(logging.INFO, logger="gpu_monitor.history"):
        recorder.tick(1000)

    assert writes.calls == 1
    assert recorder.writer.database_down and recorder.unwritten() == 1
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_an_error_on_a_connection_that_still_answers_is_an_outage_not_retried(
    fake_nvml: ModuleType, staged: Callable[..., FailingWrites], caplog: pytest.LogCaptureFixture
) -> None:
    """A statement timeout, a lock timeout: the connection is fine, a retry would only wait
    as long again."""
    recorder = make()
    recorder.tick(1000)
    writes = staged(recorder, error=OperationalError("canceling statement"), lose=False)

    with caplog.at_level(logging.INFO, logger="gpu_monitor.history"):
        recorder.tick(1010)

    assert writes.calls == 1
    assert recorder.writer.database_down and recorder.unwritten() == 1
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_a_permanent_error_on_a_lost_connection_is_not_retried(
    fake_nvml: ModuleType, staged: Callable[..., FailingWrites]
) -> None:
    recorder = make()
    recorder.tick(1000)
    writes = staged(recorder, error=ProgrammingError("no such table: gpu_monitor_history_sample"))

    recorder.tick(1010)

    assert writes.calls == 1
    assert recorder.failure is not None and "run manage.py migrate" in recorder.failure


def test_the_served_connection_is_the_one_the_last_write_used(fake_nvml: ModuleType) -> None:
    recorder = make()
    assert recorder.writer.served is None
    recorder.tick(1000)
    served: Any = recorder.writer.served
    assert served is not None and served is connection.connection
