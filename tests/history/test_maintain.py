"""``manage.py gpu_history_maintain`` where the samples are not partitioned (SQLite, or a
PostgreSQL before migration 0004): retention by batched DELETEs, the maintenance tasks,
exit codes. And nodes that never delete: ``gpu_record --retention off``. The partitioned
PostgreSQL side is in test_partitions_postgres.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from types import ModuleType

import pytest
from django.core.management import ManagementUtility, call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from gpu_monitor import plugins
from gpu_monitor.history import maintenance
from gpu_monitor.history import retention as retention_module
from gpu_monitor.history.management.commands import gpu_history_maintain
from gpu_monitor.history.management.commands.gpu_record import retention
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.params import moment
from tests.history.conftest import on_postgres

pytestmark = pytest.mark.django_db(transaction=True)
NOW = 1_796_200_000  # 2026-12-02T08:26:40Z
DAY = 86400


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_history_maintain, "now", lambda: NOW)


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[maintenance.MaintenanceTask]]:
    """The registry, emptied for the test (the sub-apps' own tasks are theirs to test)."""
    registry: list[maintenance.MaintenanceTask] = []
    monkeypatch.setattr(plugins, "maintenance_tasks", lambda: registry)
    yield registry


def rows(host: str, *epochs: int) -> None:
    for epoch in epochs:
        at = moment(epoch)
        Sample.objects.create(host=host, gpu_uuid="GPU-1", gpu_index=0, epoch=epoch, timestamp=at)
        Rollup.objects.create(host=host, gpu_uuid="GPU-1", gpu_index=0, epoch=epoch)
        Event.objects.create(host=host, epoch=epoch, timestamp=at, kind="xid", xid=79)


def maintain(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_history_maintain", *args, stdout=out)
    return out.getvalue()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command as from a shell: its exit status, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "gpu_history_maintain", *args]).execute()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_retention_deletes_every_hosts_older_rows_and_keeps_the_rest(
    tasks: list[maintenance.MaintenanceTask],
) -> None:
    rows("node-a", NOW - 9 * DAY, NOW - 8 * DAY, NOW - DAY)
    rows("node-b", NOW - 31 * DAY, NOW - 10)

    said = maintain("--retention", "7d")

    for model in (Sample, Rollup, Event):
        kept = sorted(model.objects.values_list("host", "epoch"))  # type: ignore[attr-defined]
        assert kept == [("node-a", NOW - DAY), ("node-b", NOW - 10)]
    cutoff = "2026-11-25T08:26:40Z"
    if not on_postgres():
        assert f"samples: deleted 3 row(s) older than {cutoff}" in said
    assert f"rollups: deleted 3 row(s) older than {cutoff}" in said
    assert f"events: deleted 3 row(s) older than {cutoff}" in said


def test_the_default_retention_is_gpu_records_seven_days(
    tasks: list[maintenance.MaintenanceTask],
) -> None:
    rows("node-a", NOW - 7 * DAY - 1, NOW - 7 * DAY)

    maintain()

    assert list(Rollup.objects.values_list("epoch", flat=True)) == [NOW - 7 * DAY]


@pytest.mark.sqlite  # the unpartitioned samples table's batches: PostgreSQL drops days
def test_old_rows_go_in_batches_each_its_own_statement(
    monkeypatch: pytest.MonkeyPatch, tasks: list[maintenance.MaintenanceTask]
) -> None:
    monkeypatch.setattr(retention_module, "RETENTION_BATCH", 4)
    rows("node-a", *range(NOW - 20 * DAY, NOW - 20 * DAY + 10))

    with CaptureQueriesContext(connection) as queries:
        said = maintain("--retention", "1d")

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 9  # 4 + 4 + 2 rows of each table
    assert all("LIMIT 4" in sql for sql in deletes)
    assert "samples: deleted 10 row(s)" in said
    assert "partitions: none (the samples table of database 'default' is not partitioned" in said
    assert not Sample.objects.exists()


def test_retention_off_deletes_nothing(tasks: list[maintenance.MaintenanceTask]) -> None:
    rows("node-a", 0, NOW - 400 * DAY)

    said = maintain("--retention", "off")

    assert "retention: off, nothing deleted" in said
    assert (Sample.objects.count(), Rollup.objects.count(), Event.objects.count()) == (2, 2, 2)


def test_a_dry_run_counts_and_changes_nothing(tasks: list[maintenance.MaintenanceTask]) -> None:
    rows("node-a", NOW - 9 * DAY, NOW - 8 * DAY, NOW - DAY)
    calls: list[int] = []
    tasks.append(lambda now, using: str(calls.append(now)))

    said = maintain("--retention", "7d", "--dry-run")

    assert "rollups: would delete 2 row(s) older than 2026-11-25T08:26:40Z" in said
    assert "events: would delete 2 row(s)" in said
    assert (Sample.objects.count(), Rollup.objects.count(), Event.objects.count()) == (3, 3, 3)
    assert calls == []


def test_each_declared_task_runs_once_and_its_line_is_printed(
    tasks: list[maintenance.MaintenanceTask],
) -> None:
    calls: list[tuple[int, str]] = []

    def usage(now: int, using: str) -> str:
        calls.append((now, using))
        return "usage: deleted 5 row(s)"

    def other(now: int, using: str) -> str:
        return f"other: ran at {now}"

    tasks.extend([usage, other])

    said = maintain().splitlines()

    assert calls == [(NOW, "default")]
    assert said[-2:] == ["usage: deleted 5 row(s)", f"other: ran at {NOW}"]


def test_a_task_whose_database_fails_is_exit_1_and_the_others_still_run(
    capsys: pytest.CaptureFixture[str], tasks: list[maintenance.MaintenanceTask]
) -> None:
    def broken(now: int, using: str) -> str:
        raise OperationalError("database is locked")

    tasks.extend([broken, lambda now, using: "after: ran"])

    code, out, err = run(capsys)

    assert code == 1
    assert "after: ran" in out
    assert "broken: database error: database is locked" in err
    assert "1 maintenance task(s) failed: " in err and "broken" in err
    assert "Traceback" not in err


def test_a_database_error_is_exit_1_with_a_sentence_and_no_traceback(
    capsys: pytest.CaptureFixture[str], tasks: list[maintenance.MaintenanceTask]
) -> None:
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "gone"')
    try:
        code, out, err = run(capsys, "--retention", "1d")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "gone" RENAME TO "{table}"')

    assert code == 1
    assert err.startswith("CommandError: Database error on 'default': ")
    assert "gone" not in err and table in err
    assert "Traceback" not in err
    assert "rollups: deleted 0 row(s)" in out  # what came before the error was said


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--ahead", "-1"], "the days ahead are a whole number from 0 to 366, not '-1'"),
        (["--ahead", "367"], "the days ahead are a whole number from 0 to 366, not '367'"),
        (["--ahead", "x"], "not 'x'"),
        (["--retention", "0"], "a duration is a positive whole number"),
        (["--retention", "3651d"], "is too large: the maximum is 3650d"),
        (["--retention", "never"], "not 'never'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_are_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    rows("node-a", 0)

    code, out, err = run(capsys, *args)

    assert code == 2
    assert says in err
    assert out == ""
    assert Sample.objects.count() == 1


# -- nodes never delete: gpu_record --retention off ---------------------------------


@pytest.mark.parametrize("text", ["off", "OFF", " off "])
def test_retention_off_is_none(text: str) -> None:
    assert retention(text) is None


def test_retention_still_takes_a_duration() -> None:
    assert retention("30d") == 30 * DAY


def test_a_recorder_with_retention_off_never_deletes(fake_nvml: ModuleType) -> None:
    rows("node-1", 5)

    with CaptureQueriesContext(connection) as queries:
        call_command(
            "gpu_record", "--once", "--retention", "off", "--host", "node-1", stdout=io.StringIO()
        )

    assert not [q for q in queries if q["sql"].startswith("DELETE")]
    assert (Sample.objects.filter(epoch=5).count(), Event.objects.filter(epoch=5).count()) == (1, 1)
    assert Sample.objects.filter(host="node-1").count() == 3  # the tick's two GPUs were written


def test_a_recorder_with_a_retention_still_deletes(fake_nvml: ModuleType) -> None:
    rows("node-1", 5)

    call_command(
        "gpu_record", "--once", "--retention", "1d", "--host", "node-1", stdout=io.StringIO()
    )

    assert not Event.objects.filter(epoch=5).exists()
    assert not Rollup.objects.filter(epoch=5).exists()


class GoneAfter(io.StringIO):
    """A stdout whose reader goes away after ``lines`` writes (``| head -1``)."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        return super().write(text)


def test_a_reader_that_goes_away_does_not_stop_the_maintenance(
    tasks: list[maintenance.MaintenanceTask],
) -> None:
    """Piped into head, the first line is read and the rest of the work still runs: every
    table's retention (the samples' is the first line), and exit status 0, no traceback."""
    rows("node-a", NOW - 9 * DAY, NOW - DAY)
    out = GoneAfter(1)

    call_command("gpu_history_maintain", "--retention", "7d", stdout=out)

    for model in (Sample, Rollup, Event):
        kept = list(model.objects.values_list("epoch", flat=True))  # type: ignore[attr-defined]
        assert kept == [NOW - DAY]
    assert out.getvalue().count("\n") == 1
