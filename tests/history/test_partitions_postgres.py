"""The samples table partitioned by day on a real PostgreSQL (migration 0004,
gpu_monitor.history.partitions, ``manage.py gpu_history_maintain``), and a node's
restricted role (docs/deployment.md) under which ``gpu_record`` records and cannot
delete. Run with ``--ds tests.settings_postgres -m postgres``."""

from __future__ import annotations

import importlib
import io
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import ProgrammingError, connection, connections
from django.db.migrations.executor import MigrationExecutor

from gpu_monitor import plugins
from gpu_monitor.history import maintenance, partitions
from gpu_monitor.history.management.commands import gpu_history_maintain
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.params import moment
from tests.history.test_recorder_process import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DAY = partitions.DAY
NOW = 1_899_374_400 + 3600  # 2030-03-10T13:00:00Z: days no other test has partitions for
TODAY = NOW // DAY * DAY
ROLE = "gpu_node"
MIGRATION = importlib.import_module("gpu_monitor.history.migrations.0004_partition_samples_by_day")
DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


@pytest.fixture(autouse=True)
def partitions_kept() -> Iterator[None]:
    """The samples table partitioned as migration 0004 leaves it (a test elsewhere may
    have dropped and created it plain), and its day partitions as they were, after."""
    if not partitions.is_partitioned("default"):
        with connection.schema_editor() as editor:
            MIGRATION.partition(apps, editor)
    before = {p.name: p for p in partitions.partitions("default")}
    yield
    after = {p.name: p for p in partitions.partitions("default")}
    with connection.cursor() as cursor:
        for name in after.keys() - before.keys():
            cursor.execute(f'DROP TABLE "{name}"')
    for name in before.keys() - after.keys():
        start = before[name].start
        assert start is not None
        partitions.create_day("default", start)


@pytest.fixture
def only_default(partitions_kept: None) -> None:
    """No day partition but the test's own (the migration made some for the real today)."""
    for partition in partitions.partitions("default"):
        if not partition.is_default:
            partitions.drop("default", partition)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_history_maintain, "now", lambda: NOW)


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> list[maintenance.MaintenanceTask]:
    registry: list[maintenance.MaintenanceTask] = []
    monkeypatch.setattr(plugins, "maintenance_tasks", lambda: registry)
    return registry


def sample(epoch: int, host: str = "node-a", uuid: str = "GPU-1") -> Sample:
    return Sample.objects.create(
        host=host, gpu_uuid=uuid, gpu_index=0, epoch=epoch, timestamp=moment(epoch)
    )


def where(pk: int) -> str:
    """The partition that holds the sample ``pk``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT tableoid::regclass::text FROM "{partitions.table()}" WHERE id = %s', [pk]
        )
        return str(cursor.fetchone()[0]).strip('"')


def names() -> set[str]:
    return {p.name for p in partitions.partitions("default")}


def maintain(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_history_maintain", *args, stdout=out)
    return out.getvalue()


# -- migration 0004 ------------------------------------------------------------------


def test_the_migration_partitions_the_samples_table_with_a_default_partition() -> None:
    found = partitions.partitions("default")

    assert partitions.is_partitioned("default")
    assert found[0] == partitions.Partition(partitions.default_name(), None, None)
    days = [p for p in found if not p.is_default]
    assert days and all(p.end == p.start + DAY and p.start % DAY == 0 for p in days)  # type: ignore[operator]


def test_the_migration_back_and_forth_keeps_rows_indexes_and_ids() -> None:
    kept = [sample(TODAY + 5).pk, sample(TODAY - 40 * DAY).pk]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [partitions.table()]
        )
        indexes = [row[0] for row in cursor.fetchall()]
    executor = MigrationExecutor(connection)
    executor.migrate([("gpu_monitor_history", "0003_memory_names_gpu_index")])
    try:
        assert not partitions.is_partitioned("default")
        back = sample(TODAY + 6).pk
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert partitions.is_partitioned("default")
    assert sorted(Sample.objects.values_list("pk", flat=True)) == sorted([*kept, back])
    assert sample(TODAY + 7).pk > back  # the sequence goes on
    assert where(kept[1]) == partitions.day_name(TODAY - 40 * DAY)  # a day for each day of rows
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [partitions.table()]
        )
        assert [row[0] for row in cursor.fetchall()] == indexes
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # the state is unchanged
    assert "No changes detected" in out.getvalue()


def test_the_orm_inserts_ignores_conflicts_filters_and_deletes_on_the_partitioned_table() -> None:
    partitions.create_day("default", TODAY)
    first = sample(NOW)
    duplicate = Sample(
        host="node-a", gpu_uuid="GPU-1", gpu_index=0, epoch=NOW, timestamp=moment(NOW)
    )
    other = Sample(host="node-b", gpu_uuid="GPU-1", gpu_index=0, epoch=NOW, timestamp=moment(NOW))

    Sample.objects.bulk_create([duplicate, other], ignore_conflicts=True)

    assert Sample.objects.filter(epoch=NOW).count() == 2
    assert Sample.objects.filter(host="node-a").get().pk == first.pk
    deleted, _ = Sample.objects.filter(host="node-b").delete()
    assert deleted == 1
    assert list(Sample.objects.values_list("host", flat=True)) == ["node-a"]


# -- partitions --------------------------------------------------------------------


def test_a_row_lands_in_its_day_partition_and_a_day_without_one_in_default() -> None:
    partitions.create_day("default", TODAY)

    assert where(sample(TODAY + 10).pk) == partitions.day_name(TODAY)
    assert where(sample(TODAY + DAY + 10).pk) == partitions.default_name()


def test_the_coming_days_are_created_ahead_once(tasks: list[maintenance.MaintenanceTask]) -> None:
    said = maintain("--ahead", "3", "--retention", "off")

    expected = {partitions.day_name(TODAY + n * DAY) for n in range(4)}
    assert expected <= names()
    assert partitions.day_name(TODAY + 4 * DAY) not in names()
    span = "partitions: today and 3 day(s) ahead (2030-03-10 .. 2030-03-13)"
    assert f"{span}: 4 created, 0 already there" in said
    assert f"{span}: 0 created, 4 already there" in maintain("--ahead", "3", "--retention", "off")


def test_rows_waiting_in_default_move_into_their_new_day(
    tasks: list[maintenance.MaintenanceTask],
) -> None:
    waiting = [sample(TODAY + DAY + 60).pk, sample(TODAY + DAY + 120).pk]
    later = sample(TODAY + 9 * DAY).pk  # past the days ahead: stays in DEFAULT
    assert {where(pk) for pk in waiting} == {partitions.default_name()}

    said = maintain("--ahead", "2", "--retention", "off")

    assert {where(pk) for pk in waiting} == {partitions.day_name(TODAY + DAY)}
    assert where(later) == partitions.default_name()
    assert "; 2 row(s) moved out of the DEFAULT partition" in said
    assert sorted(Sample.objects.values_list("pk", flat=True)) == sorted([*waiting, later])


def test_a_dry_run_creates_and_drops_nothing(
    tasks: list[maintenance.MaintenanceTask], only_default: None
) -> None:
    partitions.create_day("default", TODAY - 20 * DAY)
    before = names()

    said = maintain("--ahead", "2", "--dry-run")

    assert names() == before
    assert "would create 3" in said
    assert "samples: would drop 1 partition(s) older than 2030-03-03T13:00:00Z (2030-02-18)" in said


# -- retention -------------------------------------------------------------------


def test_retention_drops_whole_days_and_deletes_old_rollups_and_events(
    tasks: list[maintenance.MaintenanceTask], only_default: None
) -> None:
    for day in (TODAY - 10 * DAY, TODAY - 9 * DAY, TODAY - 7 * DAY, TODAY - DAY):
        partitions.create_day("default", day)
        sample(day + 60)
        Rollup.objects.create(host="node-a", gpu_uuid="GPU-1", gpu_index=0, epoch=day + 60)
        Event.objects.create(host="node-a", epoch=day + 60, timestamp=moment(day + 60), kind="xid")
    in_default = sample(TODAY - 30 * DAY, host="node-b").pk  # no partition for that day
    assert where(in_default) == partitions.default_name()

    said = maintain("--retention", "7d")  # cutoff: 7 days ago, 13:00

    gone = {partitions.day_name(TODAY - 10 * DAY), partitions.day_name(TODAY - 9 * DAY)}
    assert not gone & names()
    # The day of the cutoff stays whole: a day goes once all of it is older.
    assert partitions.day_name(TODAY - 7 * DAY) in names()
    assert sorted(Sample.objects.values_list("epoch", flat=True)) == [
        TODAY - 7 * DAY + 60,
        TODAY - DAY + 60,
    ]
    assert sorted(Rollup.objects.values_list("epoch", flat=True)) == [TODAY - DAY + 60]
    assert sorted(Event.objects.values_list("epoch", flat=True)) == [TODAY - DAY + 60]
    line = next(line for line in said.splitlines() if line.startswith("samples:"))
    assert re.fullmatch(
        r"samples: dropped 2 partition\(s\) older than 2030-03-03T13:00:00Z "
        r"\(2030-02-28, 2030-03-01; slowest DROP \d+\.\d{3} s\); "
        r"deleted 1 row\(s\) from the DEFAULT partition",
        line,
    ), line
    assert "rollups: deleted 3 row(s) older than 2030-03-03T13:00:00Z" in said


def test_a_recorder_leaves_day_partitions_to_maintain_and_prunes_default(
    fake_nvml: ModuleType,
) -> None:
    from gpu_monitor.history.recorder import Recorder
    from gpu_monitor.manager import GPUManager

    partitions.create_day("default", TODAY - 10 * DAY)
    in_day = sample(TODAY - 10 * DAY + 60, host="node-1").pk
    in_default = sample(TODAY - 30 * DAY, host="node-1").pk
    recorder = Recorder(GPUManager(), host="node-1", interval=10, retention_s=DAY, buffer_ticks=5)

    recorder.tick(NOW)

    remaining = set(Sample.objects.values_list("pk", flat=True))
    assert in_day in remaining  # a whole day: gpu_history_maintain drops it
    assert in_default not in remaining


@pytest.mark.parametrize("host", [None, "node-a"])
def test_the_default_partition_keeps_a_row_at_the_cutoff_second(
    only_default: None, host: str | None
) -> None:
    cutoff = TODAY - 30 * DAY + 600  # no partition for that day: the rows wait in DEFAULT
    before, at, after = (sample(cutoff + n).pk for n in (-1, 0, 1))
    assert {where(pk) for pk in (before, at, after)} == {partitions.default_name()}

    deleted = partitions.delete_from_default("default", cutoff, 10, host=host)

    assert deleted == 1
    assert set(Sample.objects.values_list("pk", flat=True)) == {at, after}


def test_a_day_partition_covers_neither_the_day_before_nor_the_day_after(
    only_default: None,
) -> None:
    partitions.create_day("default", TODAY)

    wanted = partitions.days_to_create("default", TODAY - DAY, 3)

    assert wanted == [TODAY - DAY, TODAY + DAY]


def test_registered_tasks_run_with_the_history_database(
    tasks: list[maintenance.MaintenanceTask],
) -> None:
    calls: list[tuple[int, str]] = []
    tasks.append(lambda now, using: str(calls.append((now, using))) and "usage: done")

    said = maintain("--retention", "off")

    assert calls == [(NOW, "default")]
    assert said.splitlines()[-1] == "usage: done"


# -- a node's role: no DELETE, no DDL ----------------------------------------------


def documented_grants() -> str:
    """The SQL block of docs/deployment.md's "A node's database role" that grants."""
    section = DEPLOYMENT.read_text().split("## A node's database role", 1)[1]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    return next(block for block in blocks if "DO $$" in block)


@pytest.fixture
def node_role() -> Iterator[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {ROLE} LOGIN")
        cursor.execute(documented_grants())
    yield ROLE
    for alias in connections:
        connections[alias].close()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {ROLE}")
        cursor.execute(f"DROP ROLE {ROLE}")


def as_node(sql: str) -> None:
    """Run ``sql`` on a connection of its own under the node's role."""
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        dbname=settings["NAME"],
        user=ROLE,
        autocommit=True,
    ) as node:
        node.execute(sql)


def test_the_recorder_records_under_the_node_role_with_retention_off(
    fake_nvml: ModuleType, node_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    user = connection.settings_dict["USER"]
    connection.settings_dict["USER"] = node_role  # the recorder's writer thread connects anew
    try:
        call_command(
            "gpu_record", "--once", "--retention", "off", "--host", "node-a", stdout=io.StringIO()
        )
    finally:
        connection.settings_dict["USER"] = user

    rows = list(Sample.objects.filter(host="node-a").values_list("pk", flat=True))
    assert len(rows) == 2
    # Through the parent, with no grant on the partition the rows went to.
    partition = where(rows[0])
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_table_privilege(%s, %s, 'INSERT')", [node_role, partition])
        assert cursor.fetchone()[0] is False
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_recorder_without_retention_off_under_the_node_role_says_so_and_records(
    fake_nvml: ModuleType, node_role: str, caplog: pytest.LogCaptureFixture
) -> None:
    sample(TODAY - 30 * DAY, host="node-a")
    user = connection.settings_dict["USER"]
    connection.settings_dict["USER"] = node_role
    try:
        with caplog.at_level(logging.ERROR, logger="gpu_monitor.history.recorder"):
            call_command("gpu_record", "--once", "--host", "node-a", stdout=io.StringIO())
    finally:
        connection.settings_dict["USER"] = user

    assert Sample.objects.filter(host="node-a").count() == 3  # the old one is still there
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Retention is off: the database role may not delete") for m in said)


@pytest.mark.parametrize(
    "statement",
    [
        f'DELETE FROM "{Sample._meta.db_table}"',
        f'DELETE FROM "{Event._meta.db_table}"',
        f'TRUNCATE "{Rollup._meta.db_table}"',
        f'CREATE TABLE "{Sample._meta.db_table}_p20400101" PARTITION OF "{Sample._meta.db_table}" '
        "FOR VALUES FROM (2209075200) TO (2209161600)",
        f'DROP TABLE "{Sample._meta.db_table}_default"',
    ],
)
def test_the_node_role_may_not_delete_or_change_tables(node_role: str, statement: str) -> None:
    import psycopg.errors

    sample(NOW)

    with pytest.raises((psycopg.errors.InsufficientPrivilege, ProgrammingError)) as refused:
        as_node(statement)

    assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)
    assert Sample.objects.count() == 1


def test_a_node_whose_gpu_user_leaves_records_on_under_the_node_role(
    fake_nvml: ModuleType, node_role: str
) -> None:
    """The tick writers write with INSERT and UPDATE only: a hold that ends (gpu_monitor.usage)
    must not need a DELETE, or the node's recorder stops at the first user who leaves."""
    user = connection.settings_dict["USER"]
    connection.settings_dict["USER"] = node_role
    try:
        for gpu in fake_nvml.STATE.gpus:
            gpu.processes = [fake_nvml.FakeProcess(os.getpid(), 1024 * 1048576)]
        record = [
            "gpu_record",
            "--once",
            "--interval",
            "1",
            "--retention",
            "off",
            "--host",
            "node-a",
        ]
        call_command(*record, stdout=io.StringIO())
        first = int(time.time())  # the tick just written was stamped no later
        wait_for(lambda: int(time.time()) > first)  # the next whole second: the next tick
        for gpu in fake_nvml.STATE.gpus:
            gpu.processes = []
        call_command(*record, stdout=io.StringIO())
    finally:
        connection.settings_dict["USER"] = user

    assert Sample.objects.filter(host="node-a").count() == 4
