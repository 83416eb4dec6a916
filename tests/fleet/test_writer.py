"""The fleet's tick writer: the host's row, written in the tick's transaction."""

from __future__ import annotations

import io
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import OperationalError
from django.db.models.query import QuerySet
from django.test import Client

from gpu_monitor import plugins
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.writer import write_host_state
from gpu_monitor.history import tick_writers
from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager
from gpu_monitor.serializers import GPUDevicesResponseSerializer
from gpu_monitor.types import GPUDevicesResponse
from tests.fleet.conftest import NOW

pytestmark = pytest.mark.django_db


def test_the_fleet_declares_its_writer_once_however_often_ready_runs() -> None:
    apps.get_app_config("gpu_monitor_fleet").ready()

    assert tick_writers.registered().count(write_host_state) == 1


def test_a_tick_writes_the_devices_as_the_api_renders_them(
    fake_nvml: ModuleType, record: Callable[..., Recorder]
) -> None:
    fake_nvml.STATE.gpus[1].ecc_uncorrected_volatile = 3

    record("node-1", interval=15)

    state = HostState.objects.get()
    devices = GPUManager().get_devices()
    rendered = GPUDevicesResponseSerializer(GPUDevicesResponse(devices, len(devices))).data
    assert state.devices == rendered["devices"]
    assert state.devices[1]["ecc_errors_uncorrected_volatile"] == 3
    assert (state.host, state.epoch, state.interval_seconds) == ("node-1", NOW, 15)
    assert state.timestamp.timestamp() == NOW
    assert state.driver == {
        "driver_version": "580.159.04",
        "cuda_driver_version": "13.0",
        "nvml_version": "13.580.159.04",
    }
    assert state.processes is None  # not recorded by default


def test_each_tick_replaces_the_host_row(record: Callable[..., Recorder]) -> None:
    recorder = record("node-1")
    recorder.tick(NOW + 10)
    record("node-2")

    assert list(HostState.objects.order_by("host").values_list("host", "epoch")) == [
        ("node-1", NOW + 10),
        ("node-2", NOW),
    ]


def test_without_nvml_the_row_has_no_devices_and_no_driver(
    fake_nvml: ModuleType, record: Callable[..., Recorder]
) -> None:
    fake_nvml.configure(scenario="no_nvml")

    record("node-1")

    state = HostState.objects.get()
    assert (state.devices, state.driver) == ([], None)


def test_processes_are_recorded_when_asked(
    fake_nvml: ModuleType, record: Callable[..., Recorder]
) -> None:
    fake_nvml.configure(gpus=2, scenario="load")

    record("node-1", processes=True)

    processes = HostState.objects.get().processes
    assert processes["count"] == len(processes["processes"]) > 0
    assert {p["gpu_index"] for p in processes["processes"]} == {0, 1}


def test_a_writer_that_needs_processes_gets_them_but_the_host_row_does_not_store_them(
    fake_nvml: ModuleType, record: Callable[..., Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sub-app (usage) needs every tick's processes; the host row keeps them only when
    # gpu_record --processes asked for them.
    fake_nvml.configure(gpus=2, scenario="load")
    seen: list[tick_writers.TickContext] = []

    def needs(context: tick_writers.TickContext, using: str) -> None:
        seen.append(context)

    declared = [(write_host_state, False), (needs, True)]
    monkeypatch.setattr(plugins, "tick_writers", lambda: declared)
    assert tick_writers.needs_processes()

    record("node-1")

    (context,) = seen
    assert context.processes is not None and context.processes.count > 0
    assert context.processes_recorded is False
    assert HostState.objects.get().processes is None


# An outage closes the connection: the test cannot run inside a transaction.
@pytest.mark.django_db(transaction=True)
def test_a_failing_event_insert_rolls_the_host_row_back(
    fake_nvml: ModuleType, record: Callable[..., Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = record("node-1")
    real = QuerySet.bulk_create

    def refuse_events(self: QuerySet[Any], objs: Any, *args: Any, **kwargs: Any) -> Any:
        if self.model is Event:
            raise OperationalError("disk I/O error")
        return real(self, objs, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "bulk_create", refuse_events)
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST  # an event
    recorder.tick(NOW + 10)

    assert HostState.objects.get().epoch == NOW  # the row as the last whole tick left it
    assert not Sample.objects.filter(epoch=NOW + 10).exists()
    assert len(recorder.buffer) == 1  # an outage: the tick waits for the next try
    monkeypatch.setattr(QuerySet, "bulk_create", real)
    recorder.tick(NOW + 20)
    assert HostState.objects.get().epoch == NOW + 20
    assert Event.objects.filter(kind="gpu_lost").count() == 1


# An outage closes the connection: the test cannot run inside a transaction.
@pytest.mark.django_db(transaction=True)
def test_a_failing_tick_writer_rolls_the_samples_back(
    record: Callable[..., Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(context: tick_writers.TickContext, using: str) -> None:
        raise OperationalError("database is locked")

    declared = [(write_host_state, False), (broken, False)]
    monkeypatch.setattr(plugins, "tick_writers", lambda: declared)

    recorder = record("node-1")

    assert not Sample.objects.exists()
    assert not HostState.objects.exists()
    assert len(recorder.buffer) == 1


def test_without_a_tick_writer_the_recorder_reads_no_driver(
    fake_nvml: ModuleType, record: Callable[..., Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugins, "tick_writers", list)
    fake_nvml.CALLS.clear()

    record("node-1")

    assert fake_nvml.CALLS["nvmlSystemGetDriverVersion"] == 0
    assert Sample.objects.count() == 2
    assert not HostState.objects.exists()


def test_the_history_app_imports_no_fleet_module() -> None:
    from tests.unit.test_layers import PACKAGE, imports

    importers = {
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "history").rglob("*.py")
        if any(name.startswith("gpu_monitor.fleet") for name in imports(path))
    }
    assert importers == set()


@pytest.mark.django_db(transaction=True)
def test_gpu_record_processes_records_them_in_the_host_row(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="load")

    call_command("gpu_record", "--once", "--processes", "--host", "node-7", stdout=io.StringIO())
    call_command("gpu_record", "--once", "--host", "node-8", stdout=io.StringIO())

    rows = dict(HostState.objects.values_list("host", "processes"))
    assert rows["node-7"]["count"] > 0
    assert rows["node-8"] is None


def test_the_admin_lists_hosts_and_only_deletes_a_retired_one(
    record: Callable[..., Recorder], admin_client: Client, client: Client
) -> None:
    record("node-1")
    record("old-node")

    page = admin_client.get("/admin/gpu_monitor_fleet/hoststate/")

    assert page.status_code == 200
    assert b"node-1" in page.content
    retired = HostState.objects.get(host="old-node")
    assert admin_client.get("/admin/gpu_monitor_fleet/hoststate/add/").status_code == 403
    change = admin_client.post(
        f"/admin/gpu_monitor_fleet/hoststate/{retired.pk}/change/", {"host": "renamed"}
    )
    assert change.status_code == 403
    # A retired host would stay "down" (and its alert firing) while its row is there.
    deleted = admin_client.post(
        f"/admin/gpu_monitor_fleet/hoststate/{retired.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert list(HostState.objects.values_list("host", flat=True)) == ["node-1"]
    # Someone who is not staff is sent to the login page, and nothing is deleted.
    kept = HostState.objects.get()
    client.post(f"/admin/gpu_monitor_fleet/hoststate/{kept.pk}/delete/", {"post": "yes"})
    assert HostState.objects.count() == 1


def test_the_fleet_without_the_history_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = apps.get_app_config("gpu_monitor_fleet")
    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "gpu_monitor.history" and installed(name)
    )

    with pytest.raises(ImproperlyConfigured, match=r"add 'gpu_monitor\.history' to INSTALLED_APPS"):
        config.ready()
