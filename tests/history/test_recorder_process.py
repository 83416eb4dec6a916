"""gpu_record as a real process: signals, two recorders, a database that goes away, and
kill -9 in the middle of a tick. SQLite files and (marked ``postgres``) throwaway
PostgreSQL clusters of their own: nothing is mocked."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import pgcluster
from tests.history.conftest import on_postgres

ROOT = Path(__file__).resolve().parents[2]
# How long a test waits for a thread or a process to get somewhere: generous, as on a
# loaded CI machine; a test that gets there goes on at once.
WAIT_S = 30.0


class Store:
    """A database of its own for recorder processes: SQLite file, or a PostgreSQL
    cluster made for this test (so that stopping it touches nothing else)."""

    def __init__(self, tmp: Path, postgres: bool) -> None:
        self.cluster: pgcluster.Cluster | None = None
        if postgres:
            self.cluster = pgcluster.Cluster(tempfile.mkdtemp(prefix="gpu-monitor-pg2-"), 54330)
            if os.geteuid() == 0:
                import shutil

                shutil.chown(self.cluster.directory, "postgres", "postgres")
            self.cluster.run(
                pgcluster.binary("initdb"), "-D", self.cluster.data, "-A", "trust", "-U", "postgres"
            )
            self.cluster.start()
            self.url = f"postgres:{self.cluster.directory}:{self.cluster.port}:postgres"
        else:
            self.url = str(tmp / "history.sqlite3")
        result = manage("migrate", "--verbosity", "0", db=self.url)
        assert result.returncode == 0, result.stderr

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.cluster is None:
            with contextlib.closing(sqlite3.connect(self.url)) as db:  # "with" alone: no close
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(
            host=self.cluster.directory, port=self.cluster.port, user="postgres", dbname="postgres"
        ) as db:
            return db.execute(sql).fetchall()  # type: ignore[arg-type]

    def epochs(self) -> list[int]:
        rows = self.query("SELECT DISTINCT epoch FROM gpu_monitor_history_sample ORDER BY epoch")
        return [row[0] for row in rows]

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.remove()


def env(db: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "tests.history.settings_process",
        "HISTORY_TEST_DB": db,
        "FAKE_NVML_GPUS": "2",
        **extra,
    }


def manage(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env(db),
        capture_output=True,
        text=True,
        timeout=120,
    )


def record(db: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "gpu_record", "--host", "node-1", *args],
        cwd=ROOT,
        env=env(db, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], seconds: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s"
        time.sleep(0.05)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for a recorder that was told to stop; its status and what it logged."""
    _, stderr = process.communicate(timeout=10)
    return process.returncode, stderr


class Watched:
    """A recorder process whose stderr a thread reads as it comes, so that a test can wait
    for what it logs (at DEBUG: each failed write, each dropped tick)."""

    def __init__(self, db: str, *args: str, **extra: str) -> None:
        # -v 3: the command lets its DEBUG lines through (its default 1 says warnings only)
        self.watch(record(db, *args, "--verbosity", "3", HISTORY_TEST_LOG_LEVEL="DEBUG", **extra))

    def watch(self, process: subprocess.Popen[str]) -> None:
        """Read ``process``'s stderr in a thread, line by line as it comes."""
        self.process = process
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read, name="test-stderr", daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def said(self, text: str) -> int:
        """How many lines so far contain ``text``."""
        return sum(text in line for line in list(self.lines))

    def finish(self) -> tuple[int, str]:
        """Wait for a recorder that was told to stop; its status and what it logged."""
        self.process.wait(WAIT_S)
        self.reader.join(WAIT_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode, "".join(self.lines)


# PostgreSQL stores only in the PostgreSQL pass (scripts/test): not skipped, not made.
@pytest.fixture(params=["sqlite", "postgres"] if on_postgres() else ["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = Store(tmp_path, postgres=request.param == "postgres")
    yield made
    made.close()


def test_sigterm_writes_and_exits_0_within_a_second(store: Store) -> None:
    recorder = record(store.url, "--interval", "1")
    wait_for(lambda: len(store.epochs()) >= 1)

    started = time.monotonic()
    recorder.send_signal(signal.SIGTERM)
    recorder.wait(10)
    elapsed = time.monotonic() - started
    code, stderr = finish(recorder)

    assert code == 0, stderr
    assert elapsed < 1.0
    assert "Traceback" not in stderr


def test_ctrl_c_stops_it_the_same_way(store: Store) -> None:
    recorder = record(store.url, "--interval", "1")
    wait_for(lambda: len(store.epochs()) >= 1)

    recorder.send_signal(signal.SIGINT)

    assert finish(recorder)[0] == 0


def test_two_recorders_of_one_host_neither_crashes(store: Store) -> None:
    first = record(store.url, "--interval", "1")
    second = record(store.url, "--interval", "1")
    wait_for(lambda: len(store.epochs()) >= 3)
    for process in (first, second):
        process.send_signal(signal.SIGTERM)
    codes, errors = zip(*(finish(process) for process in (first, second)), strict=True)

    assert codes == (0, 0), errors
    duplicates = store.query(
        "SELECT gpu_uuid, epoch, COUNT(*) FROM gpu_monitor_history_sample "
        "GROUP BY gpu_uuid, epoch HAVING COUNT(*) > 1"
    )
    assert duplicates == []
    per_tick = store.query("SELECT epoch, COUNT(*) FROM gpu_monitor_history_sample GROUP BY epoch")
    assert {count for _, count in per_tick} == {2}  # one sample per GPU per tick


@pytest.mark.postgres
def test_database_down_then_back_loses_no_tick_within_the_buffer(tmp_path: Path) -> None:
    store = Store(tmp_path, postgres=True)
    try:
        recorder = Watched(store.url, "--interval", "1")
        wait_for(lambda: len(store.epochs()) >= 2)
        assert store.cluster is not None
        store.cluster.stop()
        # Three failed writes: three ticks or more wait in memory.
        wait_for(lambda: recorder.said("Database still unreachable") >= 2)
        store.cluster.start()
        wait_for(lambda: store.epochs()[-1] >= int(time.time()) - 1)
        recorder.process.send_signal(signal.SIGTERM)
        code, stderr = recorder.finish()
        assert code == 0, stderr

        epochs = store.epochs()
        assert epochs == list(range(epochs[0], epochs[-1] + 1))  # no tick missing
        assert stderr.count("Database unreachable") == 1  # said once
        assert "Database reachable again" in stderr
        assert store.query(
            "SELECT COUNT(*) FROM gpu_monitor_history_event WHERE kind = 'samples_dropped'"
        ) == [(0,)]
    finally:
        store.close()


@pytest.mark.postgres
def test_a_full_buffer_drops_the_oldest_and_says_how_many(tmp_path: Path) -> None:
    store = Store(tmp_path, postgres=True)
    try:
        recorder = Watched(store.url, "--interval", "1", HISTORY_TEST_BUFFER="2")
        wait_for(lambda: len(store.epochs()) >= 1)
        assert store.cluster is not None
        store.cluster.stop()
        wait_for(lambda: recorder.said("dropping the oldest tick") >= 2)  # two ticks dropped
        store.cluster.start()
        wait_for(lambda: store.epochs()[-1] >= int(time.time()) - 1)
        recorder.process.send_signal(signal.SIGTERM)
        code, stderr = recorder.finish()
        assert code == 0, stderr

        (message,) = store.query(
            "SELECT message FROM gpu_monitor_history_event WHERE kind = 'samples_dropped'"
        )[0:1]
        dropped = int(message[0].split()[0])
        assert dropped >= 2
        assert "tick(s) dropped" in stderr
        epochs = store.epochs()
        assert len(range(epochs[0], epochs[-1] + 1)) - len(epochs) == dropped
    finally:
        store.close()


@pytest.mark.postgres
def test_kill_9_in_the_middle_of_a_tick_leaves_no_partial_tick(tmp_path: Path) -> None:
    """The tick's samples are inserted, then its event insert waits on a lock this test
    holds: kill -9 there. The samples must be gone with the transaction."""
    import psycopg

    store = Store(tmp_path, postgres=True)
    assert store.cluster is not None
    try:
        holder = psycopg.connect(
            host=store.cluster.directory,
            port=store.cluster.port,
            user="postgres",
            dbname="postgres",
        )
        holder.execute("LOCK TABLE gpu_monitor_history_event IN EXCLUSIVE MODE")
        recorder = record(store.url, "--once", FAKE_NVML_SCENARIO="lost")  # a gpu_lost event
        wait_for(
            lambda: (
                store.query(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO \"gpu_monitor_history_event\"%'"
                )[0][0]
                == 1
            )
        )
        recorder.send_signal(signal.SIGKILL)
        finish(recorder)
        holder.rollback()
        holder.close()

        assert store.query("SELECT COUNT(*) FROM gpu_monitor_history_sample") == [(0,)]
        assert store.query("SELECT COUNT(*) FROM gpu_monitor_history_event") == [(0,)]
        again = record(store.url, "--once", FAKE_NVML_SCENARIO="lost")
        assert finish(again)[0] == 0
        assert store.query("SELECT COUNT(*) FROM gpu_monitor_history_sample") == [(1,)]
    finally:
        store.close()
