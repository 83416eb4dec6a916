"""Tests written against the mutants of ``gpu_monitor/manager/`` that survived its tests.

Each test names the behaviour it pins; the mutation run (docs/benchmarks.md, "Mutation
testing") showed that no other unit test of the manager noticed it changing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from gpu_monitor import manager as manager_module
from gpu_monitor.manager import GPUManager, GPUNotFoundError, NVMLUnavailableError, get_manager
from gpu_monitor.manager.events import XidEventsUnavailableError
from gpu_monitor.manager.fields import MIB, text
from gpu_monitor.manager.mig import NO_UTILIZATION
from gpu_monitor.manager.processes import NO_SAMPLE

UNKNOWN = 999  # NVML_ERROR_UNKNOWN in the fake, "Unknown Error"


def errors_at(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def raising(nvml: ModuleType, code: int) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise nvml.NVMLError(code)

    return call


# -- GPUManager -----------------------------------------------------------------------


def test_count_failure_is_logged_again_after_a_recovery(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        fake_nvml.STATE.count_error = UNKNOWN
        manager.get_status()
        fake_nvml.STATE.count_error = None
        manager.get_status()
        fake_nvml.STATE.count_error = UNKNOWN
        manager.get_status()

    assert errors_at(caplog) == ["Error reading the GPU count: Unknown Error"] * 2


def test_one_gpu_is_enough_for_cuda_available(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1)

    assert GPUManager().get_status().cuda_available is True


def test_process_listing_failing_with_a_non_nvml_error_gives_its_repr(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    gpu = fake_nvml.STATE.gpus[0]
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        gpu.raises = RuntimeError("boom")
        assert manager.get_processes(0) == ([], {"0": "RuntimeError('boom')"})
        gpu.raises = None
        assert manager.get_processes(0) == ([], {})
        gpu.raises = RuntimeError("boom")
        manager.get_processes(0)

    expected = "Error listing the processes of GPU 0: RuntimeError('boom')"
    assert errors_at(caplog) == [expected, expected]  # again after the recovery


def test_processes_without_memory_sort_after_those_with_any(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].processes = [
        fake_nvml.FakeProcess(100, None),
        fake_nvml.FakeProcess(200, 1 * MIB),
    ]

    processes, _ = GPUManager().get_processes(0)

    assert [p.pid for p in processes] == [200, 100]


def test_xid_listening_without_nvml_gives_nvml_s_reason(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="no_nvml")

    with pytest.raises(XidEventsUnavailableError) as caught:
        GPUManager().listen_for_xid_events()

    assert str(caught.value) == "NVML Shared Library Not Found"


def test_driver_failure_is_logged_with_nvml_s_reason(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_nvml, "nvmlSystemGetDriverVersion", raising(fake_nvml, UNKNOWN))

    with caplog.at_level(logging.ERROR, logger="gpu_monitor"), pytest.raises(NVMLUnavailableError):
        GPUManager().get_driver_info()

    assert errors_at(caplog) == ["Error reading driver information: Unknown Error"]


def test_lost_gpu_never_read_says_where_to_look(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")
    uuid = fake_nvml.STATE.gpus[1].uuid

    with pytest.raises(GPUNotFoundError) as caught:
        GPUManager().get_device_by_uuid(uuid)

    assert str(caught.value) == (
        f"GPU {uuid} is lost, and this process never read its index: "
        "see devices for the GPUs that are unavailable."
    )


def test_uuid_lookup_failing_in_the_bindings_is_logged_at_debug_with_the_traceback(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(uuid: bytes) -> Any:
        raise TypeError("bad argument")

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetHandleByUUID", broken)
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"), pytest.raises(GPUNotFoundError):
        GPUManager().get_device_by_uuid("GPU-x")

    (record,) = [r for r in caplog.records if "UUID lookup" in str(r.msg)]
    assert record.getMessage() == "UUID lookup of 'GPU-x' failed"
    assert record.exc_info is not None and record.exc_info[0] is TypeError


def test_unexpected_error_keeps_the_index_logs_the_traceback_and_once_per_state(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    gpu = fake_nvml.STATE.gpus[1]
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        gpu.raises = RuntimeError("boom")
        device = manager.get_devices()[1]
        manager.get_devices()  # the same failure again: DEBUG, still with its traceback
        gpu.raises = None
        manager.get_devices()
        gpu.raises = RuntimeError("boom")
        manager.get_devices()

    assert device.index == 1 and not device.is_available
    records = [r for r in caplog.records if "querying GPU device 1" in str(r.getMessage())]
    assert [r.levelno for r in records] == [logging.ERROR, logging.DEBUG, logging.ERROR]
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in records)


def test_processes_are_listed_when_the_gpu_uuid_cannot_be_read(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    state = fake_nvml.STATE
    state.gpus[0].processes = [fake_nvml.FakeProcess(100, MIB)]
    state.gpus[0].errors["uuid"] = UNKNOWN
    manager = GPUManager()
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        processes, errors = manager.get_processes()
        manager.get_processes()  # GPU 1's readable UUID must not reset GPU 0's state

    assert errors == {}
    assert [(p.pid, p.gpu_uuid) for p in processes] == [(100, None)]
    assert errors_at(caplog) == ["Error querying GPU device 0: Unknown Error (uuid)"]
    assert not caplog.records[0].exc_info  # an NVML error: no traceback


def test_get_manager_shuts_nvml_down_at_exit(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[Callable[[], None]] = []
    monkeypatch.setattr(manager_module.atexit, "register", registered.append)

    manager = get_manager()

    assert registered == [manager._shutdown_nvml]


# -- MIG ------------------------------------------------------------------------------


def mig_gpu(fake_nvml: ModuleType) -> Any:
    fake_nvml.configure(gpus=1, scenario="mig")
    return fake_nvml.STATE.gpus[0]


def test_mig_mode_is_the_current_one_not_the_pending_one(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    mig_gpu(fake_nvml)
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetMigMode", lambda handle: [1, 0])

    assert GPUManager().get_device(0).mig_mode == "enabled"


def test_unreadable_mig_count_lists_no_slice_and_says_why(fake_nvml: ModuleType) -> None:
    mig_gpu(fake_nvml).errors["mig_count"] = UNKNOWN

    device = GPUManager().get_device(0)

    assert device.mig_devices == []
    assert device.field_errors["mig_devices"] == "Unknown Error"


def test_invalid_argument_slot_is_a_hole_not_an_error(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    mig_gpu(fake_nvml)
    real = fake_nvml.nvmlDeviceGetMigDeviceHandleByIndex

    def holes(handle: Any, slot: int) -> Any:
        if slot == 1:
            raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_INVALID_ARGUMENT)
        return real(handle, slot)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetMigDeviceHandleByIndex", holes)
    device = GPUManager().get_device(0)

    assert len(device.mig_devices) == 4
    assert "mig_devices" not in device.field_errors


def test_other_slot_error_is_logged_and_the_later_slots_still_read(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mig_gpu(fake_nvml)
    real = fake_nvml.nvmlDeviceGetMigDeviceHandleByIndex

    def first_fails(handle: Any, slot: int) -> Any:
        if slot == 0:
            raise fake_nvml.NVMLError(UNKNOWN)
        return real(handle, slot)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetMigDeviceHandleByIndex", first_fails)
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = GPUManager().get_device(0)

    assert [m.uuid[-1] for m in device.mig_devices if m.uuid] == ["1", "2", "3", "4"]
    assert device.field_errors["mig_devices"] == "Unknown Error"
    assert errors_at(caplog) == ["Error querying GPU device 0: Unknown Error (mig_devices)"]


def test_a_slice_s_failing_field_is_logged_once_while_other_slices_read_it(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mig_gpu(fake_nvml)
    real = fake_nvml.nvmlDeviceGetUUID

    def slot0_fails(handle: Any) -> Any:
        if handle.mig_slot == 0:
            raise fake_nvml.NVMLError(UNKNOWN)
        return real(handle)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetUUID", slot0_fails)
    manager = GPUManager()
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = manager.get_device(0)
        manager.get_device(0)

    assert device.mig_devices[0].field_errors == {
        "utilization_percent": NO_UTILIZATION,
        "uuid": "Unknown Error",
    }
    assert errors_at(caplog) == ["Error querying GPU device 0: Unknown Error (uuid)"]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("mig_memory", ("total_memory_mb", "used_memory_mb", "free_memory_mb")),
        ("mig_gpu_instance_id", ("gpu_instance_id",)),
        ("mig_compute_instance_id", ("compute_instance_id",)),
    ],
)
def test_a_slice_s_unreadable_field_is_null_and_named(
    fake_nvml: ModuleType, query: str, fields: tuple[str, ...]
) -> None:
    mig_gpu(fake_nvml).errors[query] = UNKNOWN

    device = GPUManager().get_device(0)

    assert len(device.mig_devices) == 5
    for mig in device.mig_devices:
        for name in fields:
            assert getattr(mig, name) is None
            assert mig.field_errors[name] == "Unknown Error"


# -- processes ------------------------------------------------------------------------


def test_invalid_pid_is_skipped_and_said_at_debug(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.gpus[1].processes = [fake_nvml.FakeProcess(0, MIB)]

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        assert GPUManager().get_processes(1) == ([], {})

    assert "GPU 1: NVML listed the invalid pid 0; skipped" in errors_at(caplog, logging.DEBUG)


def test_a_pid_in_both_lists_keeps_the_first_entry_that_has_memory(
    fake_nvml: ModuleType,
) -> None:
    fake_nvml.STATE.gpus[0].processes = [
        fake_nvml.FakeProcess(300, 1024 * MIB),
        fake_nvml.FakeProcess(300, 512 * MIB, graphics=True, compute=False),
    ]

    (process,), _ = GPUManager().get_processes(0)

    assert (process.type, process.used_memory_mb) == ("compute+graphics", 1024)


def test_v2_process_functions_on_function_not_found_without_the_mismatch_class(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.STATE.gpus[0].processes = [fake_nvml.FakeProcess(100, MIB)]
    monkeypatch.delattr(fake_nvml, "NVMLLibraryMismatchError")
    missing = raising(fake_nvml, fake_nvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetComputeRunningProcesses", missing)
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetGraphicsRunningProcesses", missing)

    processes, errors = GPUManager().get_processes(0)

    assert errors == {}
    assert [p.pid for p in processes] == [100]
    assert fake_nvml.CALLS["nvmlDeviceGetComputeRunningProcesses_v2"] == 1


def test_no_utilization_sample_at_all_gives_the_no_sample_reason(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].processes = [fake_nvml.FakeProcess(100, MIB)]

    (process,), _ = GPUManager().get_processes(0)

    assert process.field_errors == {
        "sm_utilization_percent": NO_SAMPLE,
        "memory_utilization_percent": NO_SAMPLE,
    }


def test_process_entry_without_instance_ids_is_outside_mig(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = SimpleNamespace(pid=400, usedGpuMemory=MIB)  # old bindings: no instance ids
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetComputeRunningProcesses", lambda h: [entry])

    (process,), _ = GPUManager().get_processes(0)

    assert (process.pid, process.gpu_instance_id, process.compute_instance_id) == (400, None, None)


# -- fields ---------------------------------------------------------------------------


def test_text_replaces_undecodable_bytes() -> None:
    assert text(b"GPU \xff") == "GPU \ufffd"


def test_field_failure_is_logged_again_after_a_recovery(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    errors = fake_nvml.STATE.gpus[0].errors
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        errors["temperature"] = UNKNOWN
        manager.get_device(0)
        del errors["temperature"]
        manager.get_device(0)
        errors["temperature"] = UNKNOWN
        manager.get_device(0)

    assert errors_at(caplog) == ["Error querying GPU device 0: Unknown Error (temperature_c)"] * 2


@pytest.mark.parametrize(("pstate", "shown"), [(15, "P15"), (16, None), (32, None)])
def test_performance_states_p0_to_p15_only_and_unknown_ones_not_logged(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, pstate: int, shown: str | None
) -> None:
    fake_nvml.STATE.gpus[0].pstate = pstate

    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = GPUManager().get_device(0)

    assert device.performance_state == shown
    assert errors_at(caplog) == []
    if shown is None:
        assert device.field_errors["performance_state"] == f"Unknown performance state {pstate}"


def test_failure_of_a_call_with_two_fields_names_both(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.gpus[0].errors["utilization"] = UNKNOWN

    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = GPUManager().get_device(0)

    assert device.field_errors["utilization_percent"] == "Unknown Error"
    assert device.field_errors["memory_utilization_percent"] == "Unknown Error"
    assert errors_at(caplog) == [
        "Error querying GPU device 0: Unknown Error "
        "(utilization_percent, memory_utilization_percent)"
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [("clock_mem", "memory_clock_mhz"), ("clock_max_mem", "memory_clock_max_mhz")],
)
def test_unreadable_memory_clock_is_named(fake_nvml: ModuleType, query: str, field: str) -> None:
    fake_nvml.STATE.gpus[0].errors[query] = UNKNOWN

    device = GPUManager().get_device(0)

    assert getattr(device, field) is None
    assert device.field_errors[field] == "Unknown Error"


def test_memory_v2_version_mismatch_falls_back_to_v1_and_says_so_at_debug(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = fake_nvml.nvmlDeviceGetMemoryInfo

    def no_v2(handle: Any, version: int | None = None) -> Any:
        if version:
            raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        return real(handle)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetMemoryInfo", no_v2)
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        device = GPUManager().get_device(0)

    assert device.used_memory_mb == 480  # v1: reserved memory counted as used
    assert "NVML memory query v2 unavailable; falling back to v1 accounting" in errors_at(
        caplog, logging.DEBUG
    )


# -- session --------------------------------------------------------------------------


def test_forked_child_says_it_initialises_again_at_debug(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    child = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child)

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        assert manager.get_status().device_count == 2

    assert f"Process {child} forked after NVML init: initialising again" in errors_at(
        caplog, logging.DEBUG
    )


def test_after_shutdown_the_reason_says_so(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    manager._shutdown_nvml()

    assert manager.error_message == "NVML has been shut down in this process"


def test_failed_nvml_shutdown_is_logged_at_debug_with_the_traceback(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    monkeypatch.setattr(fake_nvml, "nvmlShutdown", raising(fake_nvml, UNKNOWN))

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        manager._shutdown_nvml()

    (record,) = [r for r in caplog.records if r.getMessage() == "nvmlShutdown failed"]
    assert record.exc_info is not None and record.exc_info[0] is fake_nvml.NVMLError


def test_is_error_is_false_for_other_exceptions_and_unknown_codes(fake_nvml: ModuleType) -> None:
    session = GPUManager()._session

    assert session.is_error(ValueError("no .value"), "UNKNOWN") is False
    assert session.is_error(fake_nvml.NVMLError(UNKNOWN), "NO_SUCH_CODE") is False
    assert session.is_error(fake_nvml.NVMLError(UNKNOWN), "NO_SUCH_CODE", "UNKNOWN") is True


# -- health counters ------------------------------------------------------------------


def test_field_values_not_supported_falls_back_to_one_call_per_counter(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.gpus[0].remapped_rows = (5, 7, 0, 1)
    not_supported = raising(fake_nvml, fake_nvml.NVML_ERROR_NOT_SUPPORTED)
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetFieldValues", not_supported)

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        device = GPUManager().get_device(0)

    assert device.ecc_mode == "enabled"
    assert (device.remapped_rows_correctable, device.remapped_rows_uncorrectable) == (5, 7)
    assert (device.remapped_rows_pending, device.remapped_rows_failure) == (False, True)
    assert "remapped_rows_correctable" not in device.field_errors
    assert (
        "nvmlDeviceGetFieldValues unavailable (Not Supported): one call per counter"
        in errors_at(caplog, logging.DEBUG)
    )


def test_one_by_one_ecc_mode_is_the_current_one(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.STATE.field_values = False
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetEccMode", lambda handle: [1, 0])

    assert GPUManager().get_device(0).ecc_mode == "enabled"


def test_field_values_failing_otherwise_nulls_every_counter_and_logs_once(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetFieldValues", raising(fake_nvml, UNKNOWN))

    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = GPUManager().get_device(0)

    counters = (
        "ecc_mode, ecc_errors_corrected_volatile, ecc_errors_uncorrected_volatile, "
        "ecc_errors_corrected_aggregate, ecc_errors_uncorrected_aggregate, "
        "remapped_rows_correctable, remapped_rows_uncorrectable, remapped_rows_pending, "
        "remapped_rows_failure, retired_pages_pending"
    )
    assert errors_at(caplog) == [f"Error querying GPU device 0: Unknown Error ({counters})"]
    for name in counters.split(", "):
        assert getattr(device, name) is None
        assert device.field_errors[name] == "Unknown Error"


def test_a_short_field_values_answer_is_never_matched_to_the_wrong_counters(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fake_nvml.nvmlDeviceGetFieldValues
    monkeypatch.setattr(
        fake_nvml, "nvmlDeviceGetFieldValues", lambda handle, ids: real(handle, ids)[1:]
    )

    device = GPUManager().get_device(0)

    assert not device.is_available
    assert device.error_message is not None and "ValueError" in device.error_message


# -- XID events -----------------------------------------------------------------------


def test_xid_registration_registers_every_gpu_for_xid_errors_in_its_set(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, Any]] = []
    monkeypatch.setattr(
        fake_nvml,
        "nvmlDeviceRegisterEvents",
        lambda handle, kinds, event_set: calls.append((handle.index, kinds, event_set)),
    )

    events = GPUManager().listen_for_xid_events()

    assert events.gpus == [0, 1]
    xid = fake_nvml.nvmlEventTypeXidCriticalError
    assert calls == [(0, xid, events._set), (1, xid, events._set)]


def test_xid_registration_without_gpus_says_no_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=0)

    with pytest.raises(XidEventsUnavailableError) as caught:
        GPUManager().listen_for_xid_events()

    assert str(caught.value) == "no GPU"


def test_xid_registration_refused_by_some_gpus_is_a_warning_naming_them(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.configure(gpus=3)
    real = fake_nvml.nvmlDeviceRegisterEvents

    def refuse_after_0(handle: Any, kinds: int, event_set: Any) -> None:
        if handle.index:
            raise fake_nvml.NVMLError(UNKNOWN)
        real(handle, kinds, event_set)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceRegisterEvents", refuse_after_0)
    with caplog.at_level(logging.WARNING, logger="gpu_monitor"):
        events = GPUManager().listen_for_xid_events()

    assert events.gpus == [0]
    assert errors_at(caplog, logging.WARNING) == [
        "XID events not available on GPU 1: Unknown Error; GPU 2: Unknown Error"
    ]


def test_xid_wait_returns_the_event_or_none_after_the_timeout(fake_nvml: ModuleType) -> None:
    events = GPUManager().listen_for_xid_events()
    fake_nvml.STATE.xid_events.append((1, 79))
    before = time.time()

    event = events.wait(1)

    assert event is not None
    assert (event.gpu_index, event.gpu_uuid, event.xid) == (1, fake_nvml.STATE.gpus[1].uuid, 79)
    assert before <= event.at <= time.time()
    assert events.wait(1) is None


def test_xid_wait_raises_other_nvml_errors(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = GPUManager().listen_for_xid_events()
    monkeypatch.setattr(fake_nvml, "nvmlEventSetWait_v2", raising(fake_nvml, UNKNOWN))

    with pytest.raises(fake_nvml.NVMLError):
        events.wait(1)


def test_xid_from_a_gpu_that_no_longer_answers_keeps_its_xid(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    events = GPUManager().listen_for_xid_events()
    fake_nvml.STATE.xid_events.append((0, 79))
    lost = raising(fake_nvml, fake_nvml.NVML_ERROR_GPU_IS_LOST)
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetIndex", lost)

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        event = events.wait(1)

    assert event is not None
    assert (event.gpu_index, event.gpu_uuid, event.xid) == (None, None, 79)
    (record,) = [r for r in caplog.records if "no longer answers" in r.getMessage()]
    assert record.getMessage() == "XID event from a GPU that no longer answers"
    assert record.exc_info is not None and record.exc_info[0] is fake_nvml.NVMLError


def test_xid_set_failing_to_free_is_logged_at_debug_with_the_traceback(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    events = GPUManager().listen_for_xid_events()
    monkeypatch.setattr(fake_nvml, "nvmlEventSetFree", raising(fake_nvml, UNKNOWN))

    with caplog.at_level(logging.DEBUG, logger="gpu_monitor"):
        events.close()

    (record,) = [r for r in caplog.records if r.getMessage() == "nvmlEventSetFree failed"]
    assert record.exc_info is not None and record.exc_info[0] is fake_nvml.NVMLError


def test_bindings_without_event_sets_say_so(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = GPUManager()
    monkeypatch.delattr(fake_nvml, "nvmlEventSetCreate")

    with pytest.raises(XidEventsUnavailableError) as caught:
        manager.listen_for_xid_events()

    assert str(caught.value) == "NVML has no event sets"


def test_event_set_refused_by_nvml_gives_nvml_s_reason(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_permission = raising(fake_nvml, fake_nvml.NVML_ERROR_NO_PERMISSION)
    monkeypatch.setattr(fake_nvml, "nvmlEventSetCreate", no_permission)

    with pytest.raises(XidEventsUnavailableError) as caught:
        GPUManager().listen_for_xid_events()

    assert str(caught.value) == "Insufficient Permissions"


def test_event_set_failing_in_the_bindings_is_logged_at_debug_with_the_traceback(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Any:
        raise RuntimeError("bindings")

    monkeypatch.setattr(fake_nvml, "nvmlEventSetCreate", broken)
    with (
        caplog.at_level(logging.DEBUG, logger="gpu_monitor"),
        pytest.raises(XidEventsUnavailableError, match=r"^RuntimeError: bindings$"),
    ):
        GPUManager().listen_for_xid_events()

    (record,) = [r for r in caplog.records if "Registering" in r.getMessage()]
    assert record.getMessage() == "Registering for XID events failed"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
