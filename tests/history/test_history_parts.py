"""The history sub-app's smaller parts: admin, the command in-process, merging partial
aggregates, the recorder against a database that fails for real, and XID edge cases."""

from __future__ import annotations

import io
import logging
import re
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import Client

from gpu_monitor.history.aggregate import merge
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager, XidEventsUnavailableError
from gpu_monitor.params import moment
from tests.history.test_recorder_process import WAIT_S, wait_for


@pytest.mark.django_db
def test_admin_lists_samples_and_events_read_only(client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    for index, host in enumerate(["host-a", "host-b"]):
        Sample.objects.create(
            host=host,
            gpu_uuid=f"GPU-{index}",
            gpu_index=index,
            name="NVIDIA H100",
            epoch=1000 + index,
            timestamp=moment(1000 + index),
            utilization_percent=61 + index,
        )
    Event.objects.create(host="host-a", epoch=1000, timestamp=moment(1000), kind="xid", xid=79)
    Event.objects.create(host="host-a", epoch=1001, timestamp=moment(1001), kind="gpu_lost")

    samples = client.get("/admin/gpu_monitor_history/sample/").content.decode()
    host_b = client.get("/admin/gpu_monitor_history/sample/?host=host-b").content.decode()
    xids = client.get("/admin/gpu_monitor_history/event/?kind=xid").content.decode()
    add = client.get("/admin/gpu_monitor_history/sample/add/")

    hosts = re.findall(r'class="field-host">([^<]*)<', samples)
    assert hosts == ["host-b", "host-a"]  # both rows, newest first
    assert re.findall(r'class="field-utilization_percent">([^<]*)<', host_b) == ["62"]
    assert re.findall(r'class="field-kind">([^<]*)<', xids) == ["XID error"]
    assert re.findall(r'class="field-xid">([^<]*)<', xids) == ["79"]
    assert add.status_code == 403  # written by gpu_record only
    assert str(Sample.objects.get(host="host-a")) == "host-a GPU 0 at 1970-01-01 00:16:40"
    assert str(Event.objects.get(kind="xid")).startswith("host-a xid at ")


@pytest.mark.django_db(transaction=True)
def test_gpu_record_once_in_process(fake_nvml: ModuleType) -> None:
    out = io.StringIO()

    call_command("gpu_record", "--once", "--host", "cmd", stdout=out, stderr=io.StringIO())

    assert Sample.objects.filter(host="cmd").count() == 2
    assert out.getvalue().startswith(
        "Recorded host 'cmd' at "
    )  # one line (test_record_command_says)


def test_merge_adds_sums_and_keeps_maxima() -> None:
    into = {("a", 1): [10, 2, 7, 100, 200, 40, 1.5, 1], ("a", 2): [None] * 8}
    merge(
        into,
        {
            ("a", 1): [5, 1, 9, 90, None, 45, 2.5, 1],
            ("a", 2): [3, 1, 3, 1, 2, 3, None, 0],
            ("b", 1): [1, 1, 1, 1, 1, 1, 1.0, 1],
        },
    )

    assert into[("a", 1)] == [15, 3, 9, 100, 200, 45, 4.0, 2]
    assert into[("a", 2)] == [3, 1, 3, 1, 2, 3, None, 0]
    assert into[("b", 1)] == [1, 1, 1, 1, 1, 1, 1.0, 1]


@pytest.mark.django_db(transaction=True)
def test_a_failing_database_buffers_then_writes_and_counts_drops(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """Every statement fails as with a server gone (Django's execute_wrapper), then works."""
    recorder = Recorder(GPUManager(), host="h", interval=10, retention_s=10**6, buffer_ticks=2)
    recorder.tick(1000)
    down = True

    def server(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if down:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with (
        caplog.at_level(logging.DEBUG, logger="gpu_monitor.history"),
        connection.execute_wrapper(server),
    ):
        fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST  # an event
        for epoch in (1010, 1020, 1030, 1040):
            recorder.tick(epoch)
        assert (
            recorder.writer.database_down
            and len(recorder.buffer) == 2
            and recorder.buffer.dropped == 2
        )
        down = False
        recorder.tick(1050)

    assert not recorder.buffer and not recorder.writer.database_down
    # At most 2 ticks in memory: 1010, 1020 and (when 1050 came) 1030 were dropped.
    assert sorted(set(Sample.objects.values_list("epoch", flat=True))) == [1000, 1040, 1050]
    dropped = Event.objects.get(kind="samples_dropped")
    assert dropped.message.startswith("3 tick(s) dropped")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert sum(m.startswith("Database unreachable") for _, m in messages) == 1
    assert any(level == logging.WARNING and "3 tick(s) dropped" in m for level, m in messages)
    assert any("Database reachable again" in m for _, m in messages)


def test_xid_wait_timeout_error_and_lost_device(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    events = manager.listen_for_xid_events()
    assert events.wait(10) is None  # Timeout: no event
    fake_nvml.STATE.xid_events = [(1, 43)]
    fake_nvml.STATE.gpus[1].errors["uuid"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    event = events.wait(10)

    assert event is not None and (event.xid, event.gpu_index, event.gpu_uuid) == (43, 1, None)
    events.close()


def test_xid_partly_supported_registers_what_it_can(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.gpus[0].errors["events"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    with caplog.at_level(logging.WARNING, logger="gpu_monitor"):
        events = GPUManager().listen_for_xid_events()

    assert events.gpus == [1]
    assert "XID events not available on GPU 0: Not Supported" in caplog.text
    events.close()


def test_xid_without_nvml_is_unavailable(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND

    with pytest.raises(XidEventsUnavailableError, match="NVML Shared Library Not Found"):
        GPUManager().listen_for_xid_events()


@pytest.mark.django_db(transaction=True)
def test_a_failing_xid_wait_is_retried_not_fatal(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    def broken(event_set: object, timeout_ms: int) -> None:
        raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(fake_nvml, "nvmlEventSetWait_v2", broken)
    recorder = Recorder(GPUManager(), host="h", interval=10, retention_s=10**6, buffer_ticks=2)
    with caplog.at_level(logging.WARNING, logger="gpu_monitor.history"):
        listener = threading.Thread(
            target=recorder.sampler.listen_for_xid, args=(recorder.stopping,), name="gpu-xid"
        )
        listener.start()
        try:
            wait_for(lambda: "Waiting for XID events failed" in caplog.text)
        finally:
            recorder.stop()
            listener.join(WAIT_S)

    assert "Waiting for XID events failed: Unknown Error" in caplog.text
    assert not listener.is_alive()
    assert Rollup.objects.count() == 0
