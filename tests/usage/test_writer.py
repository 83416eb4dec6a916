"""The usage tick writer: exact arithmetic over scripted ticks, holds and idle events."""

from __future__ import annotations

import io
import os
import pwd
import re
from types import ModuleType

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from gpu_monitor import host as host_details
from gpu_monitor.history import maintenance, tick_writers
from gpu_monitor.history.models import Event
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.params import iso
from gpu_monitor.types import GPUDevice, GPUProcess, GPUProcessesResponse
from gpu_monitor.usage.models import Hold, Usage
from gpu_monitor.usage.report import idle_now, usage_report
from gpu_monitor.usage.writer import (
    IDLE_HELD,
    IDLE_HELD_ENDED,
    prune_usage,
    uid_owner,
    write_usage,
)
from tests.usage.conftest import NOW, Script

pytestmark = pytest.mark.django_db
WINDOW = {"since": NOW - 86400, "until": NOW + 86400}


def gpu(index: int, uuid: str | None, utilization: int) -> GPUDevice:
    return GPUDevice(index=index, name="GPU", uuid=uuid, utilization_percent=utilization)


def context(epoch: int, devices: list[GPUDevice], held: list[tuple[int, str]]) -> TickContext:
    """A tick of node-1: ``held`` lists (GPU index, user), a process of 1 MiB each."""
    processes = [
        GPUProcess(gpu_index=g, gpu_uuid=None, pid=1, type="compute", used_memory_mb=1, username=u)
        for g, u in held
    ]
    return TickContext(
        host="node-1",
        epoch=epoch,
        interval=10,
        devices=devices,
        driver=None,
        processes=GPUProcessesResponse(processes, len(processes), {}),
    )


def report(by: str = "user", **filters: str) -> dict[str, dict[str, object]]:
    rows = usage_report(**WINDOW, by=by, **filters)["rows"]
    return {row["user"] or row["gpu_uuid"] or row["host"]: row for row in rows}


def test_usage_declares_its_writer_and_its_upkeep_once_however_often_ready_runs() -> None:
    apps.get_app_config("gpu_monitor_usage").ready()

    assert tick_writers.registered().count(write_usage) == 1
    assert tick_writers.needs_processes()
    assert maintenance.registered().count(prune_usage) == 1


def test_the_issue_example_an_hour_with_20_minutes_idle_and_10_shared(script: Script) -> None:
    # A holds GPU 0 for 360 ticks of 10 s: 120 at 0 %, then 60 shared with B, then alone.
    script.users[0] = [("alice", 1000)]
    script.utilization(0, 0)
    script.tick(120)
    script.utilization(0, 90)
    script.users[0] = [("alice", 1000), ("bob", 3000)]
    script.tick(60)
    script.users[0] = [("alice", 2000)]
    script.tick(180)

    rows = report()
    alice, bob = rows["alice"], rows["bob"]
    assert (alice["gpu_hours"], alice["idle_gpu_hours"], alice["shared_gpu_hours"]) == (
        1.0,
        0.333,
        0.167,
    )
    assert alice["active_gpu_hours"] == 0.667
    assert alice["utilization_percent"] == 60.0  # (120 x 0 + 240 x 90) / 360
    assert alice["max_memory_mb"] == 2000
    # MiB-seconds: 180 x 10 x 1000 + 180 x 10 x 2000 = 5 400 000 = 1.465 GiB-hours
    assert alice["memory_gib_hours"] == round(5_400_000 / 1024 / 3600, 3)
    assert (alice["first_seen"], alice["last_seen"]) == (iso(NOW + 10), iso(NOW + 3600))
    assert (bob["gpu_hours"], bob["idle_gpu_hours"], bob["shared_gpu_hours"]) == (
        0.167,
        0.0,
        0.167,
    )
    assert list(rows) == ["alice", "bob"]  # most GPU-hours first


def test_a_period_row_is_added_to_at_each_tick_and_periods_are_five_minutes(
    script: Script,
) -> None:
    script.users[1] = [("alice", 100)]
    script.tick(45)  # NOW + 10 .. NOW + 450: 29 ticks in the first period, 16 in the next

    rows = Usage.objects.order_by("period")
    assert [
        (r.period - NOW, r.seconds_held, r.first_epoch - NOW, r.last_epoch - NOW) for r in rows
    ] == [
        (0, 290, 10, 290),
        (300, 160, 300, 450),
    ]
    assert {r.gpu_index for r in rows} == {1}


def test_a_missed_tick_adds_no_time(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.tick(10)
    script.skip(20)  # the recorder was down for 200 s
    script.tick(10)

    assert report()["alice"]["gpu_hours"] == round(200 / 3600, 3)
    assert sum(Usage.objects.values_list("seconds_held", flat=True)) == 200


def test_a_changed_interval_is_honoured(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, 30)
    script.tick(6, interval=10)  # 60 s at 30 %
    script.utilization(0, 90)
    script.tick(4, interval=60)  # 240 s at 90 %

    alice = report()["alice"]
    assert alice["gpu_hours"] == round(300 / 3600, 3)
    assert alice["utilization_percent"] == 78.0  # (60 x 30 + 240 x 90) / 300, not 66
    assert alice["memory_gib_hours"] == round(100 * 300 / 1024 / 3600, 3)


def test_unknown_utilisation_is_held_and_active_but_in_no_mean(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, None)
    script.tick(3)
    script.utilization(0, 50)
    script.tick(1)

    row = Usage.objects.get()
    assert (row.seconds_held, row.idle_seconds, row.utilization_seconds) == (40, 0, 10)
    assert report()["alice"]["utilization_percent"] == 50.0


def test_no_utilisation_read_at_all_is_a_null_mean(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, None)
    script.tick(2)

    assert report()["alice"]["utilization_percent"] is None


@override_settings(GPU_MONITOR={"USAGE_IDLE_PERCENT": 5})
def test_idle_is_utilisation_at_or_below_the_threshold(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    for percent in (0, 5, 6, 100):
        script.utilization(0, percent)
        script.tick()

    assert Usage.objects.get().idle_seconds == 20


def test_a_restart_continues_the_period_and_the_hold(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, 0)
    script.tick(5)
    script.restart()
    script.tick(5)

    row = Usage.objects.get()
    assert (row.seconds_held, row.idle_seconds) == (100, 100)
    hold = Hold.objects.get()
    assert (hold.held_since, hold.idle_since, hold.last_epoch) == (NOW, NOW, NOW + 100)


def test_a_tick_written_twice_counts_once(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.tick(3)
    other = script.restart()  # a second recorder of the same host writes the same tick
    other.tick(script.epoch)

    assert Usage.objects.get().seconds_held == 30


def test_users_are_stored_as_they_are_and_cut_to_255_characters(script: Script) -> None:
    long = "ü" * 300
    script.users[0] = [("Zoë Ødegård", 10), ("not an identifier; DROP", 10), (long, 10)]
    script.tick()

    assert set(Usage.objects.values_list("user", flat=True)) == {
        "Zoë Ødegård",
        "not an identifier; DROP",
        "ü" * 255,
    }


def test_a_process_without_a_user_name_is_its_owner_in_proc_else_unknown(
    script: Script,
) -> None:
    script.users[0] = [(None, 10), (None, 20)]
    script.owners[1000] = "1234"  # pid 1000's uid has no name: psutil's form
    script.tick()

    assert dict(Usage.objects.values_list("user", "max_memory_mb")) == {
        "1234": 10,
        "unknown": 20,
    }


@pytest.mark.parametrize(
    "reason", [host_details.NOT_VISIBLE, host_details.ENDED, host_details.DENIED]
)
def test_proc_is_not_read_where_psutil_could_not_name_the_owner(
    script: Script, reason: str
) -> None:
    script.users[0] = [(None, 10)]
    script.owners[1000] = "someone-else"  # what /proc says of that pid number now
    script.no_user_because = reason
    script.tick()

    assert list(Usage.objects.values_list("user", flat=True)) == ["unknown"]


def test_proc_is_not_read_from_a_child_pid_namespace(
    script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_details, "CHILD_NAMESPACE", True)
    script.users[0] = [(None, 10)]
    script.owners[1000] = "someone-else"
    script.tick()

    assert list(Usage.objects.values_list("user", flat=True)) == ["unknown"]


def test_the_owner_in_proc_is_named_as_psutil_names_it() -> None:
    assert uid_owner(os.getpid()) == owner_of_this_process()
    assert uid_owner(2**31 - 1) is None  # no such process


def test_a_users_processes_on_one_gpu_are_summed_and_each_gpu_counts(script: Script) -> None:
    script.users[0] = [("alice", 100), ("alice", 300)]
    script.users[1] = [("alice", 50)]
    script.tick(2)

    rows = report(by="gpu")
    assert sorted((r["gpu_index"], r["max_memory_mb"], r["gpu_hours"]) for r in rows.values()) == [
        (0, 400, round(20 / 3600, 3)),
        (1, 50, round(20 / 3600, 3)),
    ]
    assert Usage.objects.filter(gpu_index=0).get().shared_seconds == 0  # one user


@override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 1})
def test_idle_held_is_written_once_per_episode_and_its_end_once(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, 0)
    script.tick(5)
    assert not Event.objects.filter(kind=IDLE_HELD).exists()  # 50 s idle
    script.tick(1)  # 60 s of idle samples
    script.tick(10)
    script.utilization(0, 40)
    script.tick(3)
    script.utilization(0, 0)
    script.tick(6)  # a second episode

    events = list(Event.objects.order_by("epoch").values_list("kind", "epoch", "gpu_index"))
    assert events == [
        (IDLE_HELD, NOW + 60, 0),
        (IDLE_HELD_ENDED, NOW + 170, 0),
        (IDLE_HELD, NOW + 250, 0),
    ]
    assert "alice" not in Event.objects.first().message  # GET events is not for names


@override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 1})
def test_an_idle_hold_ends_when_the_user_leaves_the_gpu(script: Script) -> None:
    script.users[0] = [("alice", 100), ("bob", 100)]
    script.utilization(0, 0)
    script.tick(6)
    script.users[0] = [("bob", 100)]
    script.tick()

    assert list(Event.objects.order_by("epoch").values_list("kind", "message")) == [
        (IDLE_HELD, "GPU 0 held by 2 users at utilisation <= 0 % for 1 min (who: GET usage/idle)"),
        (IDLE_HELD_ENDED, "GPU 0 is no longer held idle by 1 user"),
    ]
    ends = Hold.objects.order_by("user").values_list("user", "ended_epoch")
    assert list(ends) == [("alice", script.epoch), ("bob", None)]  # alice's ended, kept


# What a node's database role may not run (docs/deployment.md): it reads, inserts, updates.
NOT_FOR_A_NODE = re.compile(r"\s*(DELETE|TRUNCATE|DROP|ALTER|CREATE|GRANT)\b", re.IGNORECASE)


@override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 1})
def test_a_user_who_leaves_and_comes_back_ends_and_restarts_the_hold_without_a_delete(
    script: Script,
) -> None:
    script.restart().retention.retention_s = None  # a node's recorder: --retention off
    script.users[0] = [("alice", 100)]
    script.utilization(0, 0)
    with CaptureQueriesContext(connection) as queries:
        script.tick(6)  # idle for a minute: idle_held
        script.users.clear()
        script.tick()  # alice left: the hold ends, and its episode
        left = script.epoch
        gone = idle_now(minutes=1, now=left)["gpus"]
        script.tick(2)
        script.users[0] = [("alice", 300)]
        script.tick(6)  # back, idle for a minute again: a new hold, a new episode

    refused = [q["sql"] for q in queries.captured_queries if NOT_FOR_A_NODE.match(q["sql"])]
    assert refused == []
    assert gone == []  # an ended hold is not idle now, though seen at the last ticks
    events = list(Event.objects.order_by("epoch").values_list("kind", "epoch"))
    assert events == [(IDLE_HELD, NOW + 60), (IDLE_HELD_ENDED, left), (IDLE_HELD, NOW + 150)]
    hold = Hold.objects.get()
    back = left + 20  # the first tick back, less its interval
    assert (hold.held_since, hold.idle_since, hold.ended_epoch) == (back, back, None)
    assert (hold.last_epoch, hold.memory_mb, hold.idle_event_sent) == (NOW + 150, 300, True)
    idle = idle_now(minutes=1, now=script.epoch)["gpus"]
    assert [(g["user"], g["idle_since"]) for g in idle] == [("alice", iso(back))]


def test_an_ended_hold_stays_ended_when_a_second_recorder_writes_an_older_tick() -> None:
    def tick(epoch: int, users: list[str]) -> None:
        write_usage(context(epoch, [gpu(0, "GPU-0", 0)], [(0, u) for u in users]), "default")

    tick(NOW, ["alice"])
    tick(NOW + 20, [])  # alice left (the tick at NOW + 10 was missed)
    tick(NOW + 10, ["alice"])  # another recorder of the host, late: changes no hold

    assert list(Hold.objects.values_list("last_epoch", "ended_epoch")) == [(NOW, NOW + 20)]


@override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 1})
def test_a_recorder_down_for_long_ends_the_hold_and_its_episode(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.utilization(0, 0)
    script.tick(6)
    script.skip(4)  # more than 3 intervals without a tick
    script.tick()

    kinds = list(Event.objects.order_by("epoch").values_list("kind", flat=True))
    assert kinds == [IDLE_HELD, IDLE_HELD_ENDED]
    hold = Hold.objects.get()
    assert hold.held_since == hold.idle_since == script.epoch - 10


def test_retention_deletes_rows_of_periods_older_than_usage_retention(script: Script) -> None:
    script.users[0] = [("alice", 100)]
    script.tick(31)  # periods NOW and NOW + 300

    with override_settings(GPU_MONITOR={"USAGE_RETENTION": 1}):
        line = prune_usage(NOW + 86400 + 300, "default")

    assert list(Usage.objects.values_list("period", flat=True)) == [NOW + 300]
    assert line == "usage: deleted 1 row(s) and 0 hold(s) older than 1 day(s), 0 ended hold(s)"


def test_retention_deletes_the_ended_holds_and_the_holds_not_seen_since(script: Script) -> None:
    script.users[0] = [("alice", 100), ("bob", 100)]
    script.tick()
    script.users[0] = [("bob", 100)]
    script.tick()  # alice's hold ends (the recorder marks it, it cannot delete)
    Hold.objects.create(
        host="node-0", gpu_uuid="GPU-x", gpu_index=0, user="carol", held_since=NOW - 86400,
        last_epoch=NOW - 86400 - 10, interval_seconds=10,
    )  # fmt: skip  # a host that stopped recording a day ago

    with override_settings(GPU_MONITOR={"USAGE_RETENTION": 1}):
        line = prune_usage(NOW + 20, "default")

    assert list(Hold.objects.values_list("user", "ended_epoch")) == [("bob", None)]
    assert line == "usage: deleted 0 row(s) and 1 hold(s) older than 1 day(s), 1 ended hold(s)"


def test_the_models_match_the_migrations() -> None:
    out = io.StringIO()
    call_command("makemigrations", "gpu_monitor_usage", "--check", "--dry-run", stdout=out)

    assert "No changes detected" in out.getvalue()


def test_the_admin_shows_usage_and_changes_nothing(script: Script, admin_client: Client) -> None:
    script.users[0] = [("Zoë", 10)]
    script.tick()

    for page in ("usage", "hold"):
        response = admin_client.get(f"/admin/gpu_monitor_usage/{page}/")
        assert response.status_code == 200
        assert "Zoë" in response.content.decode()
        assert admin_client.get(f"/admin/gpu_monitor_usage/{page}/add/").status_code == 403


def test_the_history_app_imports_no_usage_module() -> None:
    from tests.unit.test_layers import PACKAGE, imports

    importers = {
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "history").rglob("*.py")
        if any(name.startswith("gpu_monitor.usage") for name in imports(path))
    }
    assert importers == set()


def test_usage_without_the_history_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    config = apps.get_app_config("gpu_monitor_usage")
    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "gpu_monitor.history" and installed(name)
    )

    with pytest.raises(ImproperlyConfigured, match=r"add 'gpu_monitor\.history' to INSTALLED_APPS"):
        config.ready()


@pytest.mark.django_db(transaction=True)
def test_gpu_record_records_usage_without_processes(fake_nvml: ModuleType) -> None:
    # A process of this test on each GPU: psutil names its owner.
    for gpu in fake_nvml.STATE.gpus:
        gpu.processes = [fake_nvml.FakeProcess(os.getpid(), 1024 * 1048576)]

    call_command("gpu_record", "--once", "--host", "node-7", stdout=io.StringIO())

    rows = Usage.objects.order_by("gpu_index")
    assert [(r.host, r.gpu_index, r.user, r.seconds_held, r.max_memory_mb) for r in rows] == [
        ("node-7", index, owner_of_this_process(), 10, 1024) for index in (0, 1)
    ]


def owner_of_this_process() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def test_gpu_history_maintain_prunes_usage_rows_past_usage_retention() -> None:
    import time

    now = int(time.time()) // 300 * 300
    for days in (401, 399):
        period = now - days * 86400
        Usage.objects.create(
            host="node-1", gpu_uuid="GPU-x", gpu_index=0, user="alice", period=period,
            seconds_held=300, first_epoch=period, last_epoch=period + 290,
        )  # fmt: skip
    out = io.StringIO()

    call_command("gpu_history_maintain", stdout=out)

    said = "usage: deleted 1 row(s) and 0 hold(s) older than 400 day(s), 0 ended hold(s)"
    assert said in out.getvalue()
    assert list(Usage.objects.values_list("period", flat=True)) == [now - 399 * 86400]


def test_a_tick_without_processes_ends_every_hold_and_adds_nothing(script: Script) -> None:
    script.users[0] = [("alice", 10)]
    script.tick()
    script.users.clear()
    script.tick()
    script.tick()  # an ended hold stays ended

    assert list(Hold.objects.values_list("ended_epoch", flat=True)) == [NOW + 20]
    assert Usage.objects.get().seconds_held == 10
    assert str(Usage.objects.get()) == f"alice on node-1 GPU 0 from {NOW}"


def test_a_gpu_without_a_uuid_is_left_out() -> None:
    devices = [gpu(0, None, 0), gpu(1, "GPU-1", 0)]

    write_usage(context(NOW, devices, [(g, "alice") for g in (0, 1, 7)]), "default")

    assert list(Usage.objects.values_list("gpu_uuid", flat=True)) == ["GPU-1"]
    assert str(Hold.objects.get()) == "alice holds node-1 GPU 1"


def test_a_uid_without_a_name_is_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_name(uid: int) -> None:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_name)

    assert uid_owner(os.getpid()) == str(os.getuid())


def usage_statements(captured: list[dict[str, str]]) -> list[str]:
    """The statements run on the usage tables and the events', one per execution
    (Django logs an ``executemany`` once, as "N times: ...")."""
    runs = []
    for query in captured:
        sql = query["sql"]
        if "gpu_monitor_usage_" in sql or "gpu_monitor_history_event" in sql:
            times = re.match(r"(\d+) times: ", sql)
            runs += [sql[times.end() if times else 0 :]] * (int(times.group(1)) if times else 1)
    return runs


def test_a_tick_runs_three_usage_statements_two_on_postgresql_however_many_hold_gpus(
    script: Script,
) -> None:
    # A round trip per statement: one upsert of the period rows, the holds' read and one
    # upsert of the holds, whatever the number of holders; the UPDATE of ended holds and
    # the events only at the ticks that have one.
    script.users[0] = [("alice", 100), ("bob", 200)]
    script.users[1] = [("carol", 300), ("alice", 50), ("dave", 10)]
    script.tick()
    with CaptureQueriesContext(connection) as queries:
        script.tick()
    steady = usage_statements(queries.captured_queries)
    script.users[1] = [("carol", 300)]
    with CaptureQueriesContext(connection) as queries:
        script.tick()  # alice and dave left GPU 1: their holds end
    ending = usage_statements(queries.captured_queries)

    # PostgreSQL: the period rows' upsert is in the holds' read (WITH ... SELECT).
    first = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "SELECT"]
    assert [sql.split()[0] for sql in steady] == [*first, "INSERT"]
    assert [sql.split()[0] for sql in ending] == [*first, "UPDATE", "INSERT"]
    assert Usage.objects.filter(last_epoch=script.epoch).count() == 3
    assert Hold.objects.filter(ended_epoch=script.epoch).count() == 2


def tick_of(epoch: int, devices: list[GPUDevice], users: list[str]) -> TickContext:
    return context(epoch, devices, [(d.index, user) for d in devices for user in users])


def test_more_holders_than_one_statement_takes_are_all_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 200 users on one GPU: 2,800 parameters, past SQLite's 999: three statements there.
    # (Django 6 reads SQLite's own limit, often 32,766: the test sets the classic one.)
    if connection.vendor == "sqlite":  # a property there: patched on the class
        monkeypatch.setattr(type(connection.features), "max_query_params", 999)
    users = [f"user{n}" for n in range(200)]
    devices = [gpu(0, "GPU-0", 5)]

    with CaptureQueriesContext(connection) as queries:
        for tick in range(1, 3):
            write_usage(tick_of(NOW + 10 * tick, devices, users), "default")

    assert Usage.objects.count() == 200
    assert set(Usage.objects.values_list("seconds_held", "shared_seconds")) == {(20, 20)}
    assert Hold.objects.filter(last_epoch=NOW + 20, held_since=NOW).count() == 200
    writes = [sql for sql in usage_statements(queries.captured_queries) if sql[:4] != "SELE"]
    assert len(writes) == (4 if connection.vendor == "postgresql" else 12)  # 2 a tick on PG


def test_two_gpus_with_one_uuid_are_written_row_by_row_as_before() -> None:
    # Not something NVML does; a multi-row upsert cannot change one row twice, so these
    # rows go one statement each: the second GPU's period row adds nothing (same tick),
    # its hold is the one kept.
    devices = [gpu(0, "GPU-0", 5), gpu(1, "GPU-0", 5)]

    write_usage(tick_of(NOW + 10, devices, ["alice"]), "default")

    assert list(Usage.objects.values_list("gpu_index", "seconds_held")) == [(0, 10)]
    assert list(Hold.objects.values_list("gpu_index", flat=True)) == [1]
