"""The recorder's PostgreSQL connection (marked ``postgres``): a backend ended by the
server (pg_terminate_backend, idle_session_timeout) is replaced at the same tick, with no
outage said; and the writer's connection carries TCP keepalives and a user timeout, so a
silently dead connection fails in seconds, under the project's own OPTIONS."""

from __future__ import annotations

import logging
import threading
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection

from gpu_monitor.history import writer as writer_module
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager
from tests.history.test_recorder_process import WAIT_S, wait_for

if TYPE_CHECKING:  # the tox cells have no psycopg: they run no PostgreSQL test
    import psycopg

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def make(interval: int = 10) -> Recorder:
    return Recorder(
        GPUManager(), host="node-1", interval=interval, retention_s=7 * 86400, buffer_ticks=360
    )


def epochs() -> list[int]:
    return sorted(set(Sample.objects.values_list("epoch", flat=True)))


class Running:
    """A recorder running in a thread (its writer thread too), on the real clock."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.thread = threading.Thread(target=recorder.run, name="test-recorder")

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.recorder.stop()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()

    def writer_pid(self) -> int:
        """The writer's backend, once it has written (read from the test thread: an
        attribute of the open connection, no statement)."""

        def open_and_written() -> bool:
            db = self.recorder.writer.writer_db
            return db is not None and db.connection is not None and bool(epochs())

        wait_for(open_and_written)
        assert self.recorder.writer.writer_db is not None
        return int(self.recorder.writer.writer_db.connection.info.backend_pid)


def written_at_their_ticks(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record, for each tick written, how long after its epoch its transaction ended."""
    lags: list[float] = []
    write_tick = recorder.writer.write_tick

    def timed(tick: Tick) -> None:
        write_tick(tick)
        lags.append(time.time() - tick.epoch)

    monkeypatch.setattr(recorder.writer, "write_tick", timed)
    return lags


def test_a_terminated_writer_backend_is_replaced_and_the_next_tick_written_at_its_tick(
    fake_nvml: ModuleType,
    admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = make(interval=1)
    lags = written_at_their_ticks(recorder, monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.history"), Running(recorder) as run:
        pid = run.writer_pid()
        # Between two ticks: just after one was written, well before the next.
        wait_for(lambda: 0.3 < time.time() % 1 < 0.7, 2)
        killed_at = time.time()
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        next_tick = int(killed_at) + 1
        wait_for(lambda: next_tick + 1 in epochs())
        new_pid = run.writer_pid()

    assert new_pid != pid
    assert next_tick in epochs()
    assert max(lags) < 1.0, lags  # every tick, the one after the kill too, within its interval
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "atabase" in r.getMessage()]
    assert [level for level, _ in said] == ["INFO"], said
    assert said[0][1].startswith("Database connection lost (terminating connection due to ")
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_a_connection_ended_by_idle_session_timeout_is_replaced_at_every_tick(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported case: the server ends each connection left idle between two ticks."""
    options = connection.settings_dict["OPTIONS"]
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {**options})
    monkeypatch.setitem(
        connection.settings_dict["OPTIONS"], "options", "-c idle_session_timeout=500"
    )
    recorder = make(interval=1)
    lags = written_at_their_ticks(recorder, monkeypatch)
    with caplog.at_level(logging.INFO, logger="gpu_monitor.history"), Running(recorder):
        wait_for(lambda: len(lags) >= 4)

    ended = [r for r in caplog.records if r.getMessage().startswith("Database connection lost")]
    assert len(ended) >= 2  # each tick after the first found its connection ended
    assert "idle-session timeout" in ended[0].getMessage()
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    got = epochs()
    assert got == list(range(got[0], got[0] + len(got)))  # no tick missing
    assert max(lags) < 1.0, lags


def writer_parameters(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The libpq parameters of the connection the recorder's writer wrote a tick on."""
    found: dict[str, str] = {}
    write_tick = recorder.writer.write_tick

    def inspect(tick: Tick) -> None:
        found.update(recorder.writer.db.connection.info.get_parameters())
        write_tick(tick)

    monkeypatch.setattr(recorder.writer, "write_tick", inspect)
    recorder.run(once=True)
    assert recorder.unwritten() == 0
    return found


def test_the_writer_connection_has_tcp_keepalives_and_a_user_timeout(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = writer_parameters(make(), monkeypatch)

    assert {key: found.get(key) for key in writer_module.writer_options()} == {
        "connect_timeout": "5",
        "keepalives": "1",
        "keepalives_idle": "10",
        "keepalives_interval": "5",
        "keepalives_count": "3",
        "tcp_user_timeout": "25000",  # ms: the idle time and every keepalive probe
    }
    ours = connection.connection.info.get_parameters() if connection.connection else {}
    assert not {"keepalives", "tcp_user_timeout"} & set(ours)  # the project's: untouched


def test_the_project_own_connection_options_win_over_the_writer_defaults(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**connection.settings_dict["OPTIONS"], "keepalives_idle": 60, "keepalives": 0}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)

    found = writer_parameters(make(), monkeypatch)

    assert (found["keepalives"], found["keepalives_idle"]) == ("0", "60")
    assert (found["keepalives_count"], found["tcp_user_timeout"]) == ("3", "25000")
