"""The recorder when things go wrong: a database that hangs, is down, lacks its tables
or refuses a row; bad options; restarts; two recorders of one host; a database router.
In-process against the test database, or as real ``gpu_record`` processes (SQLite files,
and, marked ``postgres``, a throwaway PostgreSQL cluster frozen with SIGSTOP)."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DataError, OperationalError, ProgrammingError, connection
from django.db.migrations.executor import MigrationExecutor

from gpu_monitor.history import recorder as recorder_module
from gpu_monitor.history import sampler as sampler_module
from gpu_monitor.history import writer as writer_module
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.history.writer import Writer, describe_permanent
from gpu_monitor.manager import GPUManager
from gpu_monitor.params import moment
from gpu_monitor.types import XidEvent
from tests.history.conftest import on_postgres
from tests.history.test_recorder_process import (
    ROOT,
    WAIT_S,
    Store,
    env,
    finish,
    record,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)
UUID1 = "GPU-3a34af56-e2e8-164a-8e46-000000000001"


def make(**options: Any) -> Recorder:
    settings = {"host": "node-1", "interval": 10, "retention_s": 7 * 86400, "buffer_ticks": 360}
    settings.update(options)
    return Recorder(GPUManager(), **settings)


def kinds(host: str = "node-1") -> list[tuple[str, int | None]]:
    events = Event.objects.filter(host=host).order_by("epoch", "id")
    return list(events.values_list("kind", "gpu_index"))


def recorded(kind: str, epoch: int, index: int | None = None, host: str = "node-1") -> None:
    """An event an earlier run of the recorder left."""
    Event.objects.create(
        host=host, kind=kind, epoch=epoch, timestamp=moment(epoch), gpu_index=index
    )


class HangingWriter:
    """Stands in for the database: the first tick's write never returns until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, tick: Tick) -> None:
        self.entered.set()
        self.release.wait(30)
        raise OperationalError("released")


def join_recorder_threads() -> None:
    """Wait for the writer and XID threads a test left (released, or stopping)."""
    for thread in threading.enumerate():
        if thread.name in ("gpu-write", "gpu-xid"):
            thread.join(WAIT_S)
            assert not thread.is_alive(), thread.name


# -- item 2: sampling never waits on the database ------------------------------------


def test_ticks_go_on_into_the_buffer_while_a_write_hangs_and_stop_is_prompt(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(recorder_module, "STALLED_AFTER_S", 0.0)
    hang = HangingWriter()
    seconds = itertools.count(1000, 1.0)

    def clock() -> float:
        # A second a call, but a few milliseconds of real time each: a clock that never
        # waits has the sampling thread hold the GIL, and (traced by coverage, in CI) the
        # writer thread did not reach its write within the test's waits.
        time.sleep(0.002)
        return next(seconds)

    recorder = make(interval=1, buffer_ticks=10_000, clock=clock)
    monkeypatch.setattr(recorder.writer, "write_tick", hang)
    runner = threading.Thread(target=recorder.run)
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.history"):
        runner.start()
        try:
            assert hang.entered.wait(WAIT_S)
            wait_for(lambda: recorder.unwritten() >= 20)  # the write still hangs
            stopped = time.monotonic()
            recorder.stop()
            runner.join(5)
            elapsed = time.monotonic() - stopped
            in_flight = recorder.writing_since is not None  # left while the write hung
            unwritten = recorder.unwritten()
        finally:
            recorder.stop()  # a failed wait above must not leave the runner ticking
            hang.release.set()
            runner.join(WAIT_S)
            join_recorder_threads()

    assert not runner.is_alive()
    assert elapsed < 1.0
    assert unwritten >= 20
    assert in_flight
    said = [r for r in caplog.records if r.getMessage().startswith("Database unreachable")]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    assert "no answer for" in said[0].getMessage()


def test_sigterm_while_a_write_hangs_exits_within_a_second_saying_how_many(
    tmp_path: Path,
) -> None:
    """The command's SIGTERM handler, in a process of its own (tests/history/sigterm_child.py
    signals itself): without the handler, that process dies, and this test fails."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.history.sigterm_child"],
        cwd=ROOT,
        env=env(str(tmp_path / "unused.sqlite3")),
        capture_output=True,
        text=True,
        timeout=2 * WAIT_S + 30,
    )

    assert child.returncode == 0, (
        f"the process ended with {child.returncode} (-15: SIGTERM was not handled): "
        f"{child.stdout}{child.stderr}"
    )
    result = json.loads(child.stdout.splitlines()[-1])
    assert "error" not in result, result
    assert result["elapsed"] < 1.0
    message = result["message"]
    assert message.endswith("tick(s) could not be written: the database did not answer in time.")
    assert int(message.split()[0]) >= result["buffered"] >= 3
    assert result["returncode"] == 1


# -- item 3: exit codes, outages and permanent errors --------------------------------


def test_once_that_cannot_reach_the_database_exits_non_zero(tmp_path: Path) -> None:
    unreachable = str(tmp_path / "no-such-directory" / "history.sqlite3")
    result = subprocess.run(
        [sys.executable, "manage.py", "gpu_record", "--once", "--host", "node-1"],
        cwd=ROOT,
        env=env(unreachable),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1, result.stderr
    assert "1 tick(s) could not be written: the database is unreachable" in result.stderr
    assert "unable to open database file" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_outage_at_once_is_said_once_at_error_and_not_retried(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tries: list[int] = []

    def down(self: Writer, tick: Tick) -> None:
        tries.append(tick.epoch)
        raise OperationalError('connection to server on socket "/x" failed: Connection refused')

    monkeypatch.setattr(Writer, "write_tick", down)
    with (
        caplog.at_level(logging.DEBUG, logger="gpu_monitor.history"),
        pytest.raises(
            CommandError, match=r"^1 tick\(s\) could not be written: the database is unreachable"
        ),
    ):
        call_command("gpu_record", "--once", stdout=io.StringIO())

    assert len(tries) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage().split(":")[0] for r in errors] == [
        "Database unreachable, keeping up to 360 tick(s) in memory"
    ]


def test_a_missing_table_says_run_migrate_and_exits_non_zero(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    with connection.schema_editor() as editor:
        editor.delete_model(Sample)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="gpu_monitor.history"),
            pytest.raises(CommandError) as raised,
        ):
            call_command("gpu_record", "--once", stdout=io.StringIO())
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(Sample)

    message = str(raised.value)
    assert "run manage.py migrate" in message and "gpu_monitor_history_sample" in message
    assert "unreachable" not in message
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "run manage.py migrate" in caplog.records[0].getMessage()


def test_a_permanent_error_stops_a_running_recorder(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: Writer, tick: Tick) -> None:
        raise DataError("value too long for type character varying(96)")

    monkeypatch.setattr(Writer, "write_tick", refused)
    # The wall clock: a fake one that moves a second a call has the sampling thread tick
    # without a pause, and under load it starved the writer past the join below.
    recorder = make(interval=1, clock=time.time)
    runner = threading.Thread(target=recorder.run)
    runner.start()
    runner.join(WAIT_S)  # it stops by itself (within about a second): no stop() from here
    alive = runner.is_alive()
    recorder.stop()  # if it did not, a failed test must not leave it ticking
    runner.join(WAIT_S)

    assert not alive
    assert recorder.failure == (
        "The database refused the recorder's rows (value too long for type character varying(96))"
    )


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (OperationalError("no such table: gpu_monitor_history_event"), "run manage.py migrate"),
        (OperationalError("table gpu_monitor_history_event has no column named x"), "migrate"),
        (ProgrammingError('relation "gpu_monitor_history_event" does not exist'), "refused"),
        (DataError("value too long for type character varying(255)"), "refused"),
        (OperationalError("database is locked"), None),
        (OperationalError("canceling statement due to statement timeout"), None),
        (OperationalError("connection refused"), None),
    ],
)
def test_outages_and_permanent_errors_are_told_apart(error: Exception, fix: str | None) -> None:
    told = describe_permanent(error)  # type: ignore[arg-type]

    assert (told is None) if fix is None else (told is not None and fix in told)


@pytest.mark.postgres
def test_a_host_too_long_for_its_column_is_permanent_on_postgresql(
    fake_nvml: ModuleType,
) -> None:
    recorder = make(host="h" * 300)  # past --host's validation: straight to the table

    recorder.run(once=True)

    assert recorder.failure is not None
    assert "refused" in recorder.failure and "too long" in recorder.failure
    assert recorder.unwritten() == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", ""], "a host name cannot be empty or blank"),
        (["--host", "   "], "a host name cannot be empty or blank"),
        (["--host", "h" * 256], "a host name is at most 255 characters, not 256"),
        (["--interval", "999999999w"], "'999999999w' is too large: the maximum is 1d (86400 s)"),
        (["--interval", "2d"], "'2d' is too large: the maximum is 1d (86400 s)"),
        (["--retention", "9" * 5000], "is too large: the maximum is 3650d (315360000 s)"),
        (["--retention", "3651d"], "is too large: the maximum is 3650d"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(args: list[str], says: str) -> None:
    with pytest.raises(CommandError, match=None) as raised:
        call_command("gpu_record", "--once", *args, stdout=io.StringIO())

    assert says in str(raised.value)


def test_a_sub_app_declaration_that_cannot_work_is_refused_before_recording(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.apps import apps

    from gpu_monitor import plugins

    fleet = apps.get_app_config("gpu_monitor_fleet")
    broken = plugins.SubApp(tick_writer="gpu_monitor.fleet.writer.nope")
    monkeypatch.setattr(fleet, "gpu_monitor", broken)

    with pytest.raises(CommandError) as raised:
        call_command("gpu_record", "--once", stdout=io.StringIO())

    assert str(raised.value).startswith(
        "A sub-app's declaration is wrong: gpu_monitor.fleet: gpu_monitor.tick_writer "
    )
    assert str(raised.value).endswith("; run manage.py check")
    assert Sample.objects.count() == 0


def test_the_largest_options_are_taken(fake_nvml: ModuleType) -> None:
    call_command(
        "gpu_record",
        "--once",
        "--host",
        "h" * 255,
        "--interval",
        "1d",
        "--retention",
        "3650d",
        stdout=io.StringIO(),
    )

    assert Sample.objects.filter(host="h" * 255).count() == 2


# -- item 4: a restart reconciles with what the database last recorded ---------------


def test_a_restart_after_nvml_was_unavailable_records_it_available(fake_nvml: ModuleType) -> None:
    recorded("nvml_unavailable", 900)

    make().tick(1000)

    assert kinds() == [("nvml_unavailable", None), ("nvml_available", None)]


def test_a_restart_with_nvml_still_unavailable_records_nothing_new(fake_nvml: ModuleType) -> None:
    recorded("nvml_unavailable", 900)
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND

    make().tick(1000)

    assert kinds() == [("nvml_unavailable", None)]


def test_a_restart_reads_only_the_last_nvml_event_of_its_own_host(fake_nvml: ModuleType) -> None:
    recorded("nvml_unavailable", 800)
    recorded("nvml_available", 900)
    recorded("nvml_unavailable", 950, host="other")

    make().tick(1000)

    assert kinds() == [("nvml_unavailable", None), ("nvml_available", None)]


def test_a_gpu_already_recorded_lost_gets_no_second_gpu_lost(fake_nvml: ModuleType) -> None:
    recorded("gpu_lost", 800, 0)
    recorded("gpu_recovered", 850, 0)
    recorded("gpu_lost", 900, 1)
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST

    recorder = make()
    recorder.tick(1000)
    recorder.tick(1010)

    assert kinds() == [("gpu_lost", 0), ("gpu_recovered", 0), ("gpu_lost", 1)]


def test_a_gpu_recorded_lost_that_answers_again_is_recorded_recovered(
    fake_nvml: ModuleType,
) -> None:
    recorded("gpu_lost", 900, 1)

    make().tick(1000)

    assert kinds() == [("gpu_lost", 1), ("gpu_recovered", 1)]
    assert Event.objects.get(kind="gpu_recovered").gpu_uuid == UUID1


def test_a_restart_of_a_host_with_no_events_records_none(fake_nvml: ModuleType) -> None:
    recorded("gpu_lost", 900, 1, host="other")

    make().tick(1000)

    assert kinds() == []


# -- item 6: one row per event; the router's database; the admin's indexes -----------


def test_two_recorders_of_one_host_record_each_event_once(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST
    first, second = make(), make()
    first.tick(1000)
    second.tick(1000)
    fake_nvml.STATE.count_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED
    first.tick(1010)
    second.tick(1010)
    for recorder in (first, second):  # the same XID, read by both listeners
        recorder.sampler.xid_queue.put(XidEvent(0, None, 79, 1015.4))
        recorder.sampler.xid_queue.put(XidEvent(None, None, 13, 1015.4))
    first.tick(1020)
    second.tick(1020)

    assert kinds() == [("gpu_lost", 1), ("nvml_unavailable", None), ("xid", 0), ("xid", None)]
    assert not first.buffer and not second.buffer


def test_the_same_kind_at_one_tick_on_two_gpus_is_two_events(fake_nvml: ModuleType) -> None:
    for gpu in fake_nvml.STATE.gpus:
        gpu.handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST

    make().tick(1000)
    make(host="node-2").tick(1000)

    assert kinds() == [("gpu_lost", 0), ("gpu_lost", 1)]
    assert kinds("node-2") == [("gpu_lost", 0), ("gpu_lost", 1)]


def test_the_migration_keeps_the_first_of_each_duplicated_event() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("gpu_monitor_history", "0001_initial")])
    try:
        with connection.cursor() as cursor:
            for host, kind, index, xid in [
                ("a", "gpu_lost", 1, None),
                ("a", "gpu_lost", 1, None),  # a duplicate
                ("a", "gpu_lost", 0, None),
                ("a", "nvml_unavailable", None, None),
                ("a", "nvml_unavailable", None, None),  # a duplicate, NULLs and all
                ("a", "xid", 0, 79),
                ("a", "xid", 0, 48),
                ("b", "gpu_lost", 1, None),
            ]:
                cursor.execute(
                    "INSERT INTO gpu_monitor_history_event "
                    "(host, gpu_uuid, gpu_index, epoch, timestamp, kind, xid, message) "
                    "VALUES (%s, '', %s, 1000, %s, %s, %s, '')",
                    [host, index, moment(1000), kind, xid],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("gpu_monitor_history"))

    rows = Event.objects.order_by("id").values_list("host", "kind", "gpu_index", "xid")
    assert list(rows) == [
        ("a", "gpu_lost", 1, None),
        ("a", "gpu_lost", 0, None),
        ("a", "nvml_unavailable", None, None),
        ("a", "xid", 0, 79),
        ("a", "xid", 0, 48),
        ("b", "gpu_lost", 1, None),
    ]


def test_the_models_match_the_migrations() -> None:
    out = io.StringIO()
    call_command("makemigrations", "gpu_monitor_history", "--check", "--dry-run", stdout=out)

    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize("model", [Sample, Event])
def test_every_admin_filter_date_and_order_has_an_index(model: type[Any]) -> None:
    from django.contrib import admin

    options = admin.site._registry[model]
    indexed = [tuple(index.fields) for index in model._meta.indexes]
    order = options.ordering[0].lstrip("-")

    assert options.date_hierarchy == order
    assert (order,) in indexed  # no filter: newest first, and the date drill-down
    for name in options.list_filter:
        assert (name, order) in indexed, f"{model.__name__}.{name}: no index on ({name}, {order})"


ROUTED = {"DJANGO_SETTINGS_MODULE": "tests.history.settings_router"}


@pytest.fixture(scope="module")
def routed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project's two SQLite files, migrated once: history in the second (the router)."""
    default = tmp_path_factory.mktemp("routed") / "default.sqlite3"
    for database in ("default", "history"):
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--database", database, "-v", "0"],
            cwd=ROOT,
            env=env(str(default), **ROUTED),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
    return default


@pytest.fixture
def routed(routed_template: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh copy of the two files: (default, history)."""
    default = tmp_path / routed_template.name
    for suffix in ("", ".history"):
        shutil.copy(f"{routed_template}{suffix}", f"{default}{suffix}")
    return default, Path(f"{default}.history")


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        return db.execute(sql).fetchall()


def test_the_recorder_writes_to_the_database_the_router_picks(routed: tuple[Path, Path]) -> None:
    default, history = routed
    earlier = (int(time.time()) // 300 - 2) * 300  # a period that is over, not yet old
    when = moment(earlier).strftime("%Y-%m-%d %H:%M:%S")
    for table, columns, values in [  # an earlier run's rows: a lost GPU, a sample
        ("event", "kind, gpu_index, xid, message", "'gpu_lost', 1, NULL, ''"),
        ("sample", "name, gpu_index, utilization_percent", "'x', 0, 50"),
    ]:
        query(
            history,
            f"INSERT INTO gpu_monitor_history_{table} (host, gpu_uuid, epoch, timestamp, "
            f"{columns}) VALUES ('node-1', 'GPU-x', {earlier}, '{when}', {values})",
        )

    code, stderr = finish(record(str(default), "--once", **ROUTED))

    assert code == 0, stderr
    assert query(history, "SELECT COUNT(*) FROM gpu_monitor_history_sample") == [(3,)]
    kinds = query(history, "SELECT kind FROM gpu_monitor_history_event ORDER BY id")
    assert kinds == [("gpu_lost",), ("gpu_recovered",)]  # the state the history database holds
    assert query(history, "SELECT epoch FROM gpu_monitor_history_rollup") == [(earlier,)]
    tables = "SELECT name FROM sqlite_master WHERE name LIKE 'gpu_monitor%'"
    assert query(default, tables) == []


def test_a_tick_is_one_transaction_on_the_routed_database(routed: tuple[Path, Path]) -> None:
    """The tick's event insert fails (a trigger): its samples must go with it."""
    default, history = routed
    query(
        history,
        "CREATE TRIGGER no_events BEFORE INSERT ON gpu_monitor_history_event "
        "BEGIN SELECT RAISE(ABORT, 'no events here'); END",
    )

    code, stderr = finish(
        record(str(default), "--once", FAKE_NVML_SCENARIO="lost", **ROUTED)  # a gpu_lost
    )

    assert code == 1, stderr
    assert "The database refused the recorder's rows (no events here)" in stderr
    assert query(history, "SELECT COUNT(*) FROM gpu_monitor_history_sample") == [(0,)]


# -- item 15: tests that kill surviving mutations -------------------------------------


def test_a_database_error_from_the_rollup_is_an_outage_not_a_crash(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = writer_module.roll_up
    calls: list[tuple[int, int]] = []

    def failing_once(host: str, start: int, end: int, using: str | None = None) -> int:
        calls.append((start, end))
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(host, start, end, using=using)

    monkeypatch.setattr(writer_module, "roll_up", failing_once)
    recorder = make()
    recorder.tick(1200)
    with caplog.at_level(logging.ERROR, logger="gpu_monitor.history"):
        recorder.tick(1500)  # the period 1200 is over: its rollup fails
    assert recorder.writer.database_down and recorder.failure is None
    assert "Database unreachable" in caplog.text
    recorder.tick(1510)

    assert calls == [(1200, 1500), (1200, 1500)]
    assert set(Rollup.objects.values_list("epoch", flat=True)) == {1200}
    assert not recorder.writer.database_down


def test_xid_registration_failing_again_and_again_is_said_once(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sampler_module, "XID_RETRY_S", 0.01)
    fake_nvml.STATE.events_error = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    recorder = make()
    tries: list[None] = []
    listen = recorder.sampler.manager.listen_for_xid_events

    def counted() -> Any:
        tries.append(None)
        return listen()

    monkeypatch.setattr(recorder.sampler.manager, "listen_for_xid_events", counted)
    with caplog.at_level(logging.INFO, logger="gpu_monitor.history"):
        listener = threading.Thread(
            target=recorder.sampler.listen_for_xid, args=(recorder.stopping,), name="gpu-xid"
        )
        listener.start()
        try:
            wait_for(lambda: len(tries) >= 5)
        finally:
            recorder.stop()
            listener.join(WAIT_S)

    said = [r for r in caplog.records if "XID events are not recorded" in r.getMessage()]
    assert len(said) == 1
    assert not listener.is_alive()


# -- item 2 on a real PostgreSQL: its server frozen with SIGSTOP ----------------------


def server_processes(store: Store) -> list[int]:
    """The postmaster and every process it started (backends, background workers)."""
    assert store.cluster is not None
    postmaster = int(Path(store.cluster.data, "postmaster.pid").read_text().split()[0])
    found = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.postgres
def test_a_frozen_database_server_neither_stops_the_ticks_nor_delays_sigterm(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, postgres=True)
    frozen: list[int] = []
    try:
        recorder = record(store.url, "--interval", "1")
        wait_for(lambda: len(store.epochs()) >= 2)
        frozen = server_processes(store)
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):  # a backend that ended since
                os.kill(pid, signal.SIGSTOP)
        time.sleep(4.5)  # four ticks or so, each taken while the write in flight hangs

        started = time.monotonic()
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(10)
        elapsed = time.monotonic() - started
        code, stderr = finish(recorder)
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):  # gone once the others went on
                os.kill(pid, signal.SIGCONT)
        store.close()

    print(f"SIGTERM to exit with the server frozen: {elapsed:.3f} s")
    assert elapsed < 1.0, stderr
    assert code == 1, stderr
    line = next(line for line in stderr.splitlines() if "tick(s) could not be written" in line)
    assert line.endswith("tick(s) could not be written: the database did not answer in time.")
    assert int(line.split()[1]) >= 3, line  # "CommandError: N tick(s) ..."
    assert "Traceback" not in stderr


@pytest.mark.postgres
def test_the_recorder_connection_has_a_statement_timeout_the_project_keeps_none(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock held elsewhere: the recorder's INSERT is cancelled by statement_timeout
    (an outage: the tick stays unwritten) instead of waiting for the lock."""
    import psycopg

    assert on_postgres()
    monkeypatch.setattr(writer_module, "STATEMENT_TIMEOUT_S", 0.3)
    params = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
    try:
        holder.execute("LOCK TABLE gpu_monitor_history_sample IN EXCLUSIVE MODE")
        recorder = make()
        started = time.monotonic()
        recorder.run(once=True)
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()

    assert recorder.unwritten() == 1 and recorder.failure is None
    assert "statement timeout" in recorder.last_error
    assert recorder.writer.writer_db is not None
    assert recorder.writer.writer_db.settings_dict["OPTIONS"]["connect_timeout"] == 5
    assert "connect_timeout" not in connection.settings_dict["OPTIONS"]
    assert elapsed < 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)  # the project's own connections: untouched
