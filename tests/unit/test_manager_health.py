"""Health, mode and MIG fields of GPUManager against the fake pynvml.

Values come from the nvidia_gpu_exporter captures (H100 idle, H200 with MIG under load).
"""

from __future__ import annotations

import logging
from types import ModuleType

import pytest

from gpu_monitor.manager import GPUManager, GPUNotFoundError
from gpu_monitor.manager.health import reason_names
from gpu_monitor.types import MIGDevice

MIB = 1024 * 1024
# query of the fake -> the fields it fills
QUERIES = {
    "ecc_mode": ["ecc_mode"],
    "ecc_errors": [
        "ecc_errors_corrected_volatile",
        "ecc_errors_uncorrected_volatile",
        "ecc_errors_corrected_aggregate",
        "ecc_errors_uncorrected_aggregate",
    ],
    "remapped_rows": [
        "remapped_rows_correctable",
        "remapped_rows_uncorrectable",
        "remapped_rows_pending",
        "remapped_rows_failure",
    ],
    "clocks_event_reasons": ["clocks_event_reasons"],
    "persistence": ["persistence_mode"],
    "compute_mode": ["compute_mode"],
    "encoder": ["encoder_utilization_percent"],
    "decoder": ["decoder_utilization_percent"],
    "mig_mode": ["mig_mode"],
}


@pytest.mark.parametrize("field_values", [True, False], ids=["field-values", "one-by-one"])
def test_health_fields_of_a_gpu_with_errors(fake_nvml: ModuleType, field_values: bool) -> None:
    fake_nvml.STATE.field_values = field_values
    gpu = fake_nvml.STATE.gpus[1]
    gpu.ecc_corrected_volatile, gpu.ecc_uncorrected_volatile = 12, 1
    gpu.ecc_corrected_aggregate, gpu.ecc_uncorrected_aggregate = 40, 2
    gpu.remapped_rows = (3, 1, 1, 0)
    gpu.clocks_event_reasons = 0x40 | 0x4
    gpu.persistence_mode, gpu.compute_mode = 0, 3
    gpu.encoder_utilization, gpu.decoder_utilization = 7, 9

    device = GPUManager().get_devices()[1]

    assert device.ecc_mode == "enabled"
    assert (
        device.ecc_errors_corrected_volatile,
        device.ecc_errors_uncorrected_volatile,
        device.ecc_errors_corrected_aggregate,
        device.ecc_errors_uncorrected_aggregate,
    ) == (12, 1, 40, 2)
    assert (
        device.remapped_rows_correctable,
        device.remapped_rows_uncorrectable,
        device.remapped_rows_pending,
        device.remapped_rows_failure,
    ) == (3, 1, True, False)
    assert device.retired_pages_pending is None  # Not Supported on the H100
    assert device.clocks_event_reasons == ["sw_power_cap", "hw_thermal_slowdown"]
    assert (device.persistence_mode, device.compute_mode) == ("disabled", "exclusive_process")
    assert (device.encoder_utilization_percent, device.decoder_utilization_percent) == (7, 9)
    assert device.field_errors == {
        "fan_speed_percent": "Not Supported",
        "retired_pages_pending": "Not Supported",
    }


def test_counters_take_one_call_with_field_values(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    fake_nvml.CALLS.clear()

    manager.get_device(0)

    assert fake_nvml.CALLS["nvmlDeviceGetFieldValues"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetTotalEccErrors"] == 0
    assert fake_nvml.CALLS["nvmlDeviceGetRemappedRows"] == 0


def test_driver_without_field_values_falls_back_once(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.field_values = False
    manager = GPUManager()
    with caplog.at_level(logging.DEBUG, logger="gpu_monitor.manager"):
        first = manager.get_device(0)
    fake_nvml.CALLS.clear()
    second = manager.get_device(0)

    assert first == second
    assert second.ecc_errors_uncorrected_volatile == 0
    assert fake_nvml.CALLS["nvmlDeviceGetFieldValues"] == 0  # not asked again
    assert fake_nvml.CALLS["nvmlDeviceGetTotalEccErrors"] == 4
    assert fake_nvml.CALLS["nvmlDeviceGetRemappedRows"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetEccMode"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetRetiredPagesPendingStatus"] == 1
    assert sum("one call per counter" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("field_values", [True, False], ids=["field-values", "one-by-one"])
@pytest.mark.parametrize("query", QUERIES)
def test_each_unsupported_field_alone_is_null_and_named(
    fake_nvml: ModuleType, query: str, field_values: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.field_values = field_values
    fake_nvml.STATE.gpus[0].errors[query] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = GPUManager().get_devices()[0]

    assert device.is_available is True
    for name in QUERIES[query]:
        assert getattr(device, name) is None
        assert device.field_errors[name] == "Not Supported"
    assert device.temperature_c == 34  # the others are still read
    assert caplog.records == []  # "Not Supported" is what the GPU is, not a failure


@pytest.mark.parametrize("field_values", [True, False], ids=["field-values", "one-by-one"])
@pytest.mark.parametrize("query", QUERIES)
def test_no_permission_is_null_named_and_logged(
    fake_nvml: ModuleType, query: str, field_values: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.field_values = field_values
    fake_nvml.STATE.gpus[0].errors[query] = fake_nvml.NVML_ERROR_NO_PERMISSION

    manager = GPUManager()
    with caplog.at_level(logging.ERROR, logger="gpu_monitor"):
        device = manager.get_devices()[0]
        first = len(caplog.records)
        manager.get_devices()

    for name in QUERIES[query]:
        assert getattr(device, name) is None
        assert device.field_errors[name] == "Insufficient Permissions"
    assert 1 <= first <= len(QUERIES[query])  # at ERROR, once per failing value
    assert all("Insufficient Permissions" in r.getMessage() for r in caplog.records)
    assert len(caplog.records) == first  # the same failure again: DEBUG only


def test_field_values_call_failing_whole_nulls_its_fields_only(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["field_values"] = fake_nvml.NVML_ERROR_UNKNOWN

    device = GPUManager().get_devices()[0]

    assert device.is_available is True
    assert device.ecc_mode is None and device.remapped_rows_pending is None
    assert device.field_errors["ecc_errors_uncorrected_volatile"] == "Unknown Error"
    assert device.clocks_event_reasons == ["gpu_idle"]


def test_gpu_lost_in_field_values_marks_the_gpu_unavailable(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["ecc_errors"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    devices = GPUManager().get_devices()

    assert devices[0].is_available is False
    assert devices[0].error_message == "GPU is lost"
    assert devices[1].is_available is True


@pytest.mark.parametrize(
    ("mask", "names"),
    [
        (0, []),
        (0x1, ["gpu_idle"]),
        (0x8 | 0x40 | 0x80, ["hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"]),
        (0x2 | 0x10 | 0x20, ["applications_clocks_setting", "sync_boost", "sw_thermal_slowdown"]),
        (0x100, ["display_clock_setting"]),
        (0x4 | 0x200 | 0x8000000000, ["sw_power_cap", "unknown_0x200", "unknown_0x8000000000"]),
    ],
)
def test_clocks_event_reason_names_keep_every_bit(mask: int, names: list[str]) -> None:
    assert reason_names(mask) == names


def test_older_bindings_use_the_throttle_reasons_name(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(fake_nvml, "nvmlDeviceGetCurrentClocksEventReasons")
    monkeypatch.setattr(
        fake_nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", lambda handle: 0x8, raising=False
    )

    assert GPUManager().get_device(0).clocks_event_reasons == ["hw_slowdown"]


# -- MIG ------------------------------------------------------------------------------


def test_mig_gpu_lists_its_devices_like_nvidia_smi(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")

    device = GPUManager().get_devices()[0]

    assert device.mig_mode == "enabled"
    assert [
        (m.gpu_instance_id, m.compute_instance_id, m.used_memory_mb, m.total_memory_mb)
        for m in device.mig_devices
    ] == [
        (2, 0, 16925, 71424),
        (2, 1, 16925, 71424),
        (3, 0, 17, 33280),
        (9, 0, 9, 16384),
        (10, 0, 9, 16384),
    ]  # nvidia-smi's MIG devices table under load
    assert device.mig_devices[0] == MIGDevice(
        uuid="MIG-00000000-0000-0000-0000-000000000000",
        name="NVIDIA H200 MIG 1c.3g.71gb",
        gpu_instance_id=2,
        compute_instance_id=0,
        total_memory_mb=71424,
        used_memory_mb=16925,
        free_memory_mb=54499,
        utilization_percent=None,
        field_errors={"utilization_percent": "Not reported per MIG device by NVML"},
    )
    # The parent: memory and temperature stay, utilisation is N/A (as in the capture).
    assert (device.used_memory_mb, device.total_memory_mb) == (16959, 143771)
    assert device.utilization_percent is None
    assert device.field_errors["utilization_percent"] == "Not Supported"
    assert device.remapped_rows_pending is None


def test_mig_indexes_with_a_hole_are_all_found(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    gpu = fake_nvml.STATE.gpus[0]
    gpu.mig_devices = [gpu.mig_devices[0], None, gpu.mig_devices[2], None, gpu.mig_devices[4]]

    device = GPUManager().get_devices()[0]

    assert [m.uuid[-2:] for m in device.mig_devices if m.uuid] == ["00", "02", "04"]
    assert "mig_devices" not in device.field_errors


def test_mig_off_makes_no_mig_device_calls(fake_nvml: ModuleType) -> None:
    manager = GPUManager()
    fake_nvml.CALLS.clear()

    device = manager.get_device(0)

    assert (device.mig_mode, device.mig_devices) == ("disabled", [])
    assert fake_nvml.CALLS["nvmlDeviceGetMaxMigDeviceCount"] == 0


def test_mig_device_field_error_stays_on_that_slice(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")
    fake_nvml.STATE.gpus[0].errors["mig_name"] = fake_nvml.NVML_ERROR_NO_PERMISSION

    device = GPUManager().get_devices()[0]

    assert len(device.mig_devices) == 5
    assert all(m.name is None for m in device.mig_devices)
    assert device.mig_devices[0].field_errors["name"] == "Insufficient Permissions"
    assert device.mig_devices[0].total_memory_mb == 71424


def test_mig_listing_failure_is_a_field_error_of_the_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")
    fake_nvml.STATE.gpus[0].errors["mig_handle"] = fake_nvml.NVML_ERROR_NO_PERMISSION

    device = GPUManager().get_devices()[0]

    assert device.is_available is True
    assert device.mig_devices == []
    assert device.field_errors["mig_devices"] == "Insufficient Permissions"


def test_mig_uuid_resolves_to_its_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    manager = GPUManager()

    device = manager.get_device_by_uuid("MIG-00000003-0000-0000-0000-000000000003")

    assert device.index == 0
    assert device.name == "NVIDIA H200"
    assert len(device.mig_devices) == 5
    assert manager.index_of_uuid("MIG-00000003-0000-0000-0000-000000000003") == 0
    with pytest.raises(GPUNotFoundError):
        manager.get_device_by_uuid("MIG-99999999-0000-0000-0000-000000000000")
