"""GPUManager against the fake pynvml (values from a real H100 capture)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from types import ModuleType

import pytest

from gpu_monitor.manager import (
    UNKNOWN_NAME,
    GPUManager,
    GPUNotFoundError,
    NVMLUnavailableError,
    format_cuda_version,
    get_manager,
)
from gpu_monitor.types import DriverInfo, GPUDevice

# The H100 SXM has no fan, and no retired-pages counter (row remapping replaced it).
H100_UNSUPPORTED = {
    "fan_speed_percent": "Not Supported",
    "retired_pages_pending": "Not Supported",
}


def test_enumerates_every_gpu_with_nvidia_smi_numbers(fake_nvml: ModuleType) -> None:
    devices = GPUManager().get_devices()

    assert [d.index for d in devices] == [0, 1]
    assert devices[0] == GPUDevice(
        index=0,
        name="NVIDIA H100 80GB HBM3",
        total_memory_mb=81559,  # nvidia-smi memory.total on the captured H100
        free_memory_mb=81079,
        used_memory_mb=0,  # v2 accounting: nvidia-smi said 0 MiB, v1 would say 480
        utilization_percent=0,
        temperature_c=34,
        is_available=True,
        error_message=None,
        field_errors=H100_UNSUPPORTED,
        uuid="GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
        pci_bus_id="00000000:00:06.0",
        power_draw_w=71.07,  # 71071 mW
        power_limit_w=700.0,
        fan_speed_percent=None,
        memory_utilization_percent=0,
        performance_state="P0",
        sm_clock_mhz=345,
        memory_clock_mhz=2619,
        ecc_mode="enabled",  # nvidia-smi ecc.mode.current Enabled
        ecc_errors_corrected_volatile=0,
        ecc_errors_uncorrected_volatile=0,
        ecc_errors_corrected_aggregate=0,
        ecc_errors_uncorrected_aggregate=0,
        remapped_rows_correctable=0,
        remapped_rows_uncorrectable=0,
        remapped_rows_pending=False,
        remapped_rows_failure=False,
        retired_pages_pending=None,  # nvidia-smi retired_pages.pending [N/A]
        clocks_event_reasons=["gpu_idle"],  # clocks_event_reasons.active 0x1
        persistence_mode="enabled",
        compute_mode="default",
        encoder_utilization_percent=0,
        decoder_utilization_percent=0,
        mig_mode="disabled",
        mig_devices=[],
        sm_clock_max_mhz=1980,
        memory_clock_max_mhz=2619,
        energy_consumed_j=42983136.0,
    )
    assert devices[1].uuid == "GPU-3a34af56-e2e8-164a-8e46-000000000001"


def test_memory_rounds_up_to_whole_mib_like_nvidia_smi(fake_nvml: ModuleType) -> None:
    # Captured on a real NVIDIA H200 (driver 580.159.04); nvidia-smi showed
    # 143771 MiB total, 0 used, 143156 free (616 reserved).
    gpu = fake_nvml.STATE.gpus[0]
    gpu.total, gpu.free, gpu.used_v2, gpu.reserved = 150754820096, 150109880320, 0, 644939776

    device = GPUManager().get_devices()[0]

    assert (device.total_memory_mb, device.used_memory_mb, device.free_memory_mb) == (
        143771,
        0,
        143156,
    )


def test_memory_falls_back_to_v1_when_driver_lacks_v2(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.memory_v2 = False
    manager = GPUManager()

    assert manager.get_devices()[0].used_memory_mb == 480
    calls_after_first = fake_nvml.CALLS["nvmlDeviceGetMemoryInfo"]
    manager.get_devices()
    # The failed v2 attempt is not repeated on later calls: one call per GPU.
    assert fake_nvml.CALLS["nvmlDeviceGetMemoryInfo"] - calls_after_first == 2


def test_memory_falls_back_to_v1_when_bindings_lack_v2(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(fake_nvml, "nvmlMemory_v2")

    assert GPUManager().get_devices()[0].used_memory_mb == 480


def test_memory_falls_back_to_v1_when_function_takes_no_version(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake_nvml.nvmlDeviceGetMemoryInfo
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetMemoryInfo", lambda handle: original(handle))

    assert GPUManager().get_devices()[0].used_memory_mb == 480


def test_memory_error_other_than_missing_v2_is_a_field_error(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["memory"] = fake_nvml.NVML_ERROR_UNKNOWN

    device = GPUManager().get_devices()[0]

    assert device.is_available is True
    assert (device.total_memory_mb, device.free_memory_mb, device.used_memory_mb) == (
        None,
        None,
        None,
    )
    assert device.field_errors == {
        "total_memory_mb": "Unknown Error",
        "free_memory_mb": "Unknown Error",
        "used_memory_mb": "Unknown Error",
        **H100_UNSUPPORTED,
    }


def test_bytes_strings_become_str(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.strings_as_bytes = True
    manager = GPUManager()

    assert manager.get_devices()[0].name == "NVIDIA H100 80GB HBM3"
    assert manager.get_driver_info() == DriverInfo("580.159.04", "13.0", "13.580.159.04")


def test_driver_info_matches_nvidia_smi(fake_nvml: ModuleType) -> None:
    info = GPUManager().get_driver_info()

    assert info == DriverInfo(
        driver_version="580.159.04", cuda_driver_version="13.0", nvml_version="13.580.159.04"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(13000, "13.0"), (12020, "12.2"), (12040, "12.4"), (11080, "11.8")]
)
def test_cuda_version_is_formatted_like_nvidia_smi(value: int, expected: str) -> None:
    assert format_cuda_version(value) == expected


def test_driver_info_failure_is_unavailable_error(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> str:
        raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_UNKNOWN)

    manager = GPUManager()
    monkeypatch.setattr(fake_nvml, "nvmlSystemGetDriverVersion", broken)

    with pytest.raises(
        NVMLUnavailableError, match="driver information could not be read: Unknown Error"
    ):
        manager.get_driver_info()


def test_no_gpus_gives_empty_list(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=0)
    manager = GPUManager()

    assert manager.get_devices() == []
    assert manager.is_cuda_available() is False
    assert manager.error_message is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (12, "NVML Shared Library Not Found"),
        (9, "Driver Not Loaded"),
        (4, "Insufficient Permissions"),
        (999, "Unknown Error"),
    ],
)
def test_init_failure_makes_manager_unavailable(
    fake_nvml: ModuleType, code: int, reason: str
) -> None:
    fake_nvml.STATE.init_error = code
    manager = GPUManager()

    assert manager._nvml_initialized is False
    assert manager.get_devices() == []
    assert manager.is_cuda_available() is False
    assert manager.error_message == reason
    with pytest.raises(NVMLUnavailableError, match=reason):
        manager.get_driver_info()
    with pytest.raises(GPUNotFoundError, match=reason):
        manager.get_device(0)


def test_init_raising_non_nvml_exception_makes_manager_unavailable(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = OSError("libnvidia-ml.so.1: cannot open shared object file")
    manager = GPUManager()

    assert manager.get_devices() == []
    assert manager.error_message == "OSError: libnvidia-ml.so.1: cannot open shared object file"


def test_missing_pynvml_makes_manager_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    manager = GPUManager()

    assert manager.get_devices() == []
    assert manager.is_cuda_available() is False
    assert manager.error_message is not None
    assert "pynvml module (nvidia-ml-py) could not be imported" in manager.error_message


def test_unsupported_field_is_null_and_named(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].errors["temperature"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    devices = GPUManager().get_devices()

    assert devices[1].temperature_c is None
    assert devices[1].field_errors == {"temperature_c": "Not Supported", **H100_UNSUPPORTED}
    assert devices[1].is_available is True
    assert devices[1].utilization_percent == 0
    assert devices[0].field_errors == H100_UNSUPPORTED


def test_every_field_can_be_unsupported_alone(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors = {
        query: fake_nvml.NVML_ERROR_NOT_SUPPORTED
        for query in ("uuid", "pci", "power_usage", "power_limit", "pstate", "clock_sm")
    }

    device = GPUManager().get_devices()[0]

    assert device.is_available is True
    assert set(device.field_errors) == {
        "uuid",
        "pci_bus_id",
        "power_draw_w",
        "power_limit_w",
        "performance_state",
        "sm_clock_mhz",
    }
    assert (device.uuid, device.pci_bus_id, device.power_draw_w) == (None, None, None)
    assert (device.power_limit_w, device.performance_state, device.sm_clock_mhz) == (
        None,
        None,
        None,
    )
    assert device.memory_clock_mhz == 2619
    assert device.fan_speed_percent == 0


def test_unknown_performance_state_is_null(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].pstate = fake_nvml.NVML_PSTATE_UNKNOWN

    device = GPUManager().get_devices()[0]

    assert device.performance_state is None
    assert device.field_errors["performance_state"] == "Unknown performance state 32"


def test_device_by_uuid(fake_nvml: ModuleType) -> None:
    manager = GPUManager()

    device = manager.get_device_by_uuid("GPU-3a34af56-e2e8-164a-8e46-000000000001")

    assert device.index == 1
    assert device.total_memory_mb == 81559
    with pytest.raises(GPUNotFoundError, match="No GPU with UUID GPU-0 \\(Not Found\\)"):
        manager.get_device_by_uuid("GPU-0")


def test_device_by_uuid_lost_or_unavailable(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")
    manager = GPUManager()
    uuid = fake_nvml.STATE.gpus[1].uuid

    with pytest.raises(GPUNotFoundError, match="is lost"):
        manager.get_device_by_uuid(uuid)

    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED
    with pytest.raises(GPUNotFoundError, match="Driver Not Loaded"):
        GPUManager().get_device_by_uuid(uuid)


def test_unreadable_name_is_still_a_string(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["name"] = fake_nvml.NVML_ERROR_UNKNOWN

    device = GPUManager().get_devices()[0]

    assert device.name == UNKNOWN_NAME
    assert device.field_errors == {"name": "Unknown Error", **H100_UNSUPPORTED}
    assert device.is_available is True


def test_lost_gpu_does_not_hide_the_others(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3)
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST

    devices = GPUManager().get_devices()

    assert [d.is_available for d in devices] == [True, False, True]
    assert devices[1] == GPUDevice.unavailable(1, "GPU is lost")
    assert devices[1].name == UNKNOWN_NAME
    assert devices[1].field_errors["temperature_c"] == "GPU is lost"
    assert devices[2].total_memory_mb == 81559


def test_gpu_lost_during_a_field_query_marks_device_unavailable(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["utilization"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    devices = GPUManager().get_devices()

    assert devices[0].is_available is False
    assert devices[0].error_message == "GPU is lost"
    assert devices[1].is_available is True


def test_unexpected_exception_for_one_gpu_is_contained_and_logged(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.gpus[0].raises = ValueError("bad struct")

    with caplog.at_level(logging.ERROR, logger="gpu_monitor.manager"):
        devices = GPUManager().get_devices()

    assert devices[0].is_available is False
    assert devices[0].error_message == "Unexpected error: ValueError: bad struct"
    assert devices[1].is_available is True
    record = caplog.records[-1]
    assert (
        record.getMessage()
        == "Error querying GPU device 0: Unexpected error: ValueError: bad struct"
    )
    assert record.exc_info is not None


def test_count_failure_gives_empty_list_and_status_message(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    fake_nvml.STATE.count_error = fake_nvml.NVML_ERROR_UNKNOWN

    assert manager.get_devices() == []
    status = manager.get_status()
    assert status.cuda_available is False
    assert status.error_message == "the GPU count could not be read: Unknown Error"


def test_get_device_by_index(fake_nvml: ModuleType) -> None:
    manager = GPUManager()

    assert manager.get_device(1).index == 1
    with pytest.raises(GPUNotFoundError, match="No GPU with index 2 \\(2 GPU\\(s\\) present\\)"):
        manager.get_device(2)
    with pytest.raises(GPUNotFoundError):
        manager.get_device(-1)


def test_initialized_flag_and_single_init(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    manager.get_devices()
    manager.get_driver_info()
    manager.get_status()

    assert manager._nvml_initialized is True
    assert fake_nvml.CALLS["nvmlInit"] == 1


def test_request_makes_only_the_calls_it_needs(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    fake_nvml.CALLS.clear()

    manager.get_devices()

    assert fake_nvml.CALLS == {
        "nvmlDeviceGetCount": 1,
        "nvmlDeviceGetHandleByIndex": 2,
        "nvmlDeviceGetName": 2,
        "nvmlDeviceGetMemoryInfo": 2,
        "nvmlDeviceGetUtilizationRates": 2,
        "nvmlDeviceGetTemperature": 2,
        "nvmlDeviceGetUUID": 2,
        "nvmlDeviceGetPciInfo": 2,
        "nvmlDeviceGetPowerUsage": 2,
        "nvmlDeviceGetEnforcedPowerLimit": 2,
        "nvmlDeviceGetFanSpeed": 2,
        "nvmlDeviceGetPerformanceState": 2,
        "nvmlDeviceGetClockInfo": 4,  # SM and memory
        "nvmlDeviceGetFieldValues": 2,  # ECC mode and counters, remapped rows, retired pages
        "nvmlDeviceGetCurrentClocksEventReasons": 2,
        "nvmlDeviceGetPersistenceMode": 2,
        "nvmlDeviceGetComputeMode": 2,
        "nvmlDeviceGetEncoderUtilization": 2,
        "nvmlDeviceGetDecoderUtilization": 2,
        "nvmlDeviceGetMigMode": 2,  # MIG off: no MIG device lookups
        "nvmlDeviceGetMaxClockInfo": 4,  # SM and memory
        "nvmlDeviceGetTotalEnergyConsumption": 2,
    }


def test_shutdown_only_when_initialised_and_never_raises(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED
    GPUManager()._shutdown_nvml()
    assert fake_nvml.CALLS["nvmlShutdown"] == 0

    fake_nvml.STATE.init_error = None
    manager = GPUManager()
    manager._shutdown_nvml()
    manager._shutdown_nvml()
    assert fake_nvml.CALLS["nvmlShutdown"] == 1
    assert manager._nvml_initialized is False
    assert manager.get_devices() == []


def test_shutdown_swallows_nvml_errors(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    fake_nvml.STATE.initialized_pids.clear()  # nvmlShutdown will raise Uninitialized

    manager._shutdown_nvml()

    assert manager._nvml_initialized is False


def test_forked_child_initialises_nvml_again(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            try:
                fake_nvml.nvmlDeviceGetCount()
                before = "ok"
            except fake_nvml.NVMLError as exc:
                before = str(exc)
            devices = manager.get_devices()
            manager._shutdown_nvml()
            shutdowns = fake_nvml.CALLS["nvmlShutdown"]
            line = f"{before}|{len(devices)}|{devices[0].total_memory_mb}|{shutdowns}"
            os.write(write_fd, line.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)

    # Like the real H100: the child is uninitialised until it calls nvmlInit itself.
    assert result == "Uninitialized|2|81559|1"
    # The parent did not shut down and still answers.
    assert fake_nvml.CALLS["nvmlShutdown"] == 0
    assert len(manager.get_devices()) == 2


def test_shutdown_in_other_process_is_skipped(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = GPUManager()
    monkeypatch.setattr(manager._session, "init_pid", -1)

    manager._shutdown_nvml()

    assert fake_nvml.CALLS["nvmlShutdown"] == 0


def test_many_threads_query_without_errors(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    errors: list[BaseException] = []
    results: list[int] = []

    def work() -> None:
        try:
            for _ in range(50):
                results.append(len(manager.get_devices()))
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert results == [2] * 400
    assert fake_nvml.CALLS["nvmlInit"] == 1


def test_get_manager_returns_one_manager(fake_nvml: ModuleType) -> None:
    assert get_manager() is get_manager()
    assert fake_nvml.CALLS["nvmlInit"] == 1


def test_ready_twice_creates_no_second_manager(fake_nvml: ModuleType) -> None:
    from django.apps import apps

    config = apps.get_app_config("gpu_monitor")
    config.ready()
    first = get_manager()
    config.ready()

    assert get_manager() is first
    assert fake_nvml.CALLS["nvmlInit"] == 1


def test_log_init_success(fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gpu_monitor.manager"):
        GPUManager()

    assert (
        "gpu_monitor.manager.session",
        logging.INFO,
        "NVML initialized successfully. Found 2 GPU(s)",
    ) in (caplog.record_tuples)


@pytest.mark.parametrize(
    ("argv", "own"),
    [
        (["manage.py", "gpu_devices", "-v", "0"], True),
        (["manage.py", "gpu_record"], True),
        (["manage.py", "gpu_history_maintain"], True),
        (["manage.py", "gpu_fleet"], True),
        (["manage.py", "gpu_usage"], True),
        (["manage.py", "runserver"], True),  # the autoreloader's parent serves nothing
        (["manage.py", "runserver", "--noreload"], False),
        (["manage.py", "check"], False),
        (["manage.py", "migrate"], True),
        (["manage.py", "help", "gpu_fleet"], True),
        (["manage.py"], False),
        (["gunicorn", "example_project.wsgi"], False),
        ([], False),
    ],
)
def test_ready_leaves_nvml_to_the_apps_own_commands(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, argv: list[str], own: bool
) -> None:
    """NVML starts with the apps only where the GPU endpoints are served or checked
    (commands.nvml_at_start): a gpu_monitor command initialises it itself once its
    --verbosity is set, a database command never."""
    from django.apps import apps

    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("RUN_MAIN", raising=False)
    apps.get_app_config("gpu_monitor").ready()

    assert fake_nvml.CALLS["nvmlInit"] == (0 if own else 1)


def test_log_init_count_failure(fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    fake_nvml.STATE.count_error = fake_nvml.NVML_ERROR_UNKNOWN
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        GPUManager()

    assert caplog.record_tuples == [
        (
            "gpu_monitor.manager.session",
            logging.WARNING,
            "NVML initialized, but the GPU count could not be read: Unknown Error",
        )
    ]


def test_count_raising_anything_at_init_does_not_raise(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> int:
        raise RuntimeError("ctypes trouble")

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetCount", broken)

    manager = GPUManager()

    assert manager._nvml_initialized is True
    assert manager.get_devices() == []


def test_uuid_lookup_raising_anything_is_not_found(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(uuid: bytes) -> None:
        raise TypeError("bad argument")

    manager = GPUManager()
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetHandleByUUID", broken)

    with pytest.raises(GPUNotFoundError, match=r"No GPU with UUID GPU-1 \(TypeError\)"):
        manager.get_device_by_uuid("GPU-1")


def test_driver_error_logged_once_per_state(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> str:
        raise fake_nvml.NVMLError(fake_nvml.NVML_ERROR_UNKNOWN)

    manager = GPUManager()
    original = fake_nvml.nvmlSystemGetDriverVersion
    monkeypatch.setattr(fake_nvml, "nvmlSystemGetDriverVersion", broken)
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        for _ in range(2):
            with pytest.raises(NVMLUnavailableError):
                manager.get_driver_info()
        monkeypatch.setattr(fake_nvml, "nvmlSystemGetDriverVersion", original)
        manager.get_driver_info()
        monkeypatch.setattr(fake_nvml, "nvmlSystemGetDriverVersion", broken)
        with pytest.raises(NVMLUnavailableError):
            manager.get_driver_info()

    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.DEBUG, logging.ERROR]


def test_log_init_failure_and_empty_list(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        manager = GPUManager()
        manager.get_devices()

    assert caplog.record_tuples == [
        (
            "gpu_monitor.manager.session",
            logging.WARNING,
            "NVML initialization failed: NVML Shared Library Not Found. GPU features disabled.",
        ),
        (
            "gpu_monitor.manager.gpu_manager",
            logging.DEBUG,
            "NVML not initialized, returning empty device list",
        ),
    ]


def test_repeated_gpu_error_logged_once_per_state_change(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    gpu = fake_nvml.STATE.gpus[0]
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        caplog.clear()
        gpu.handle_error = fake_nvml.NVML_ERROR_UNKNOWN
        for _ in range(3):
            manager.get_devices()
        gpu.handle_error = None
        manager.get_devices()  # recovered
        gpu.handle_error = fake_nvml.NVML_ERROR_UNKNOWN
        manager.get_devices()  # fails again: a new state change

    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    message = "Error querying GPU device 0: Unknown Error"
    assert levels == [
        (logging.ERROR, message),
        (logging.DEBUG, message),
        (logging.DEBUG, message),
        (logging.ERROR, message),
    ]


def test_repeated_field_error_logged_once(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    manager = GPUManager()
    fake_nvml.STATE.gpus[0].errors["temperature"] = fake_nvml.NVML_ERROR_UNKNOWN
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        caplog.clear()
        manager.get_devices()
        manager.get_devices()

    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.DEBUG]
    assert (
        caplog.records[0].getMessage()
        == "Error querying GPU device 0: Unknown Error (temperature_c)"
    )


def test_count_error_logged_once(fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    manager = GPUManager()
    fake_nvml.STATE.count_error = fake_nvml.NVML_ERROR_UNKNOWN
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        caplog.clear()
        manager.get_status()
        manager.get_status()

    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.DEBUG]


def test_status_and_devices_share_one_count_lookup(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    fake_nvml.CALLS.clear()

    status, devices = manager.get_status_and_devices()

    assert (status.device_count, len(devices)) == (2, 2)
    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetHandleByIndex"] == 2
