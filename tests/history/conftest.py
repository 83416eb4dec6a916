"""History tests run on SQLite in the main suite and again on a real PostgreSQL
(``--ds tests.settings_postgres``, as scripts/test does). Tests marked ``postgres``
need PostgreSQL (they stop and start its server): deselected on SQLite, not skipped;
tests marked ``sqlite`` test what only an unpartitioned table does: deselected on
PostgreSQL (whose samples are partitioned by day).
Tests marked ``routed`` run only under a settings module whose router sends the history
to a database of its own (a test of the suite runs them in a subprocess); under such a
settings module only they run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.db import connection

from gpu_monitor.history.recorder import Recorder
from gpu_monitor.history.writer import Writer

if TYPE_CHECKING:  # the tox cells have no psycopg: they run no PostgreSQL test
    import psycopg

RECORDER_THREADS = ("gpu-write", "gpu-xid")
LEFT_WITHIN_S = 30.0  # how long a stopped recorder's threads may take to end, loaded


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def routed() -> bool:
    return "history" in settings.DATABASES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        wrong_database = (item.get_closest_marker("postgres") and not on_postgres()) or (
            item.get_closest_marker("sqlite") and on_postgres()
        )
        wrong_router = bool(item.get_closest_marker("routed")) != routed()
        (drop if wrong_database or wrong_router else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def no_recorder_left_running(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """After each test, stop every recorder it made and wait for their threads: a test
    that failed before its own stop() must fail alone, not leave a recorder that writes
    into the next tests' database (it did: 4 samples where 2, a thread still alive)."""
    made: list[Recorder] = []
    init = Recorder.__init__

    def remembered(self: Recorder, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Recorder, "__init__", remembered)
    yield
    for recorder in made:
        recorder.stop()
        recorder.writer.finish()
    deadline = time.monotonic() + LEFT_WITHIN_S
    for thread in threading.enumerate():
        if thread.name in RECORDER_THREADS:
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate() if t.name in RECORDER_THREADS]
    assert not left, f"recorder threads still running {LEFT_WITHIN_S} s after stop(): {left}"


def close_thread_connections() -> None:
    """Close this thread's database connections, its in-memory SQLite one too: Django
    keeps an in-memory test database open on close(), and Python 3.13 reports it
    unclosed when the thread is gone. Every test thread that queries calls it last."""
    from django.db import connections

    for wrapper in connections.all(initialized_only=True):
        if wrapper.vendor == "sqlite" and wrapper.connection is not None:
            wrapper.connection.close()
    connections.close_all()


@pytest.fixture(autouse=True)
def close_recorder_thread_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder's writer thread closes its connection when it ends, but Django keeps
    an in-memory test database open even on close(): close the thread's SQLite
    connection itself, or Python 3.13 reports it unclosed when the thread is gone.
    (The sub-apps' conftests, whose tests run recorders too, import it.)"""
    original = Writer.write_until_finished

    def write_until_finished(self: Writer) -> None:
        try:
            original(self)
        finally:
            close_thread_connections()

    monkeypatch.setattr(Writer, "write_until_finished", write_until_finished)


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own to the PostgreSQL test database, outside Django, in
    autocommit (to read pg_stat_activity, or end another backend)."""
    import psycopg

    params = connection.get_connection_params()
    params = {k: v for k, v in params.items() if k != "cursor_factory"}
    held = psycopg.connect(**params, autocommit=True)
    yield held
    held.close()
