"""The history sub-app's smaller parts: admin, the command in-process, merging partial
aggregates, the recorder against a database that fails for real, and XID edge cases."""

from __future__ import annotations

import io
import logging
from types import ModuleType

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client

from gpu_monitor.history.aggregate import merge
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.history.recorder import Recorder, moment
from gpu_monitor.manager import GPUManager, XidEventsUnavailableError


@pytest.mark.django_db
def test_admin_lists_samples_and_events_read_only(client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    Sample.objects.create(
        host="h", gpu_uuid="GPU-1", gpu_index=0, epoch=1000, timestamp=moment(1000)
    )
    Event.objects.create(host="h", epoch=1000, timestamp=moment(1000), kind="xid", xid=79)

    samples = client.get("/admin/gpu_monitor_history/sample/")
    events = client.get("/admin/gpu_monitor_history/event/?kind=xid")
    add = client.get("/admin/gpu_monitor_history/sample/add/")

    assert samples.status_code == events.status_code == 200
    assert "GPU-1" not in samples.content.decode() or "h GPU 0" in samples.content.decode()
    assert "XID error" in events.content.decode()
    assert add.status_code == 403  # written by gpu_record only
    assert str(Sample.objects.get()) == "h GPU 0 at 1970-01-01 00:16:40"
    assert str(Event.objects.get()).startswith("h xid at ")


@pytest.mark.django_db(transaction=True)
def test_gpu_record_once_in_process(fake_nvml: ModuleType) -> None:
    out = io.StringIO()

    call_command("gpu_record", "--once", "--host", "cmd", stdout=out, stderr=io.StringIO())

    assert Sample.objects.filter(host="cmd").count() == 2
    assert out.getvalue() == ""  # --once says nothing unless something went wrong


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
    """The events table really disappears (a failing INSERT, not a mock), then returns."""
    recorder = Recorder(GPUManager(), host="h", interval=10, retention_s=10**6, buffer_ticks=2)
    recorder.tick(1000)
    with connection.schema_editor() as editor:
        editor.delete_model(Event)
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.history"):
        fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST  # an event
        for epoch in (1010, 1020, 1030, 1040):
            recorder.tick(epoch)
        assert recorder.database_down and len(recorder.buffer) == 2 and recorder.dropped == 2
        with connection.schema_editor() as editor:
            editor.create_model(Event)
        recorder.tick(1050)

    assert not recorder.buffer and not recorder.database_down
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
        listener = threading.Thread(target=recorder.listen_for_xid)
        listener.start()
        for _ in range(100):
            if "Waiting for XID events failed" in caplog.text:
                break
            threading.Event().wait(0.02)
        recorder.stop()
        listener.join(5)

    assert "Waiting for XID events failed: Unknown Error" in caplog.text
    assert not listener.is_alive()
    assert Rollup.objects.count() == 0
