""" "GPU is lost" from any call is the GPU's state, never one field's: the device is
reported unavailable with NVML's reason (and its processes not listed), whichever call
found it out: the counters' field values, a MIG call or the process utilisation."""

from __future__ import annotations

from types import ModuleType

import pytest
from django.test import Client, override_settings

from gpu_monitor.manager import GPUManager

LOST = "GPU is lost"
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}


def assert_lost_alone(fake_nvml: ModuleType) -> None:
    """GPU 0 is reported lost, GPU 1 is read as usual."""
    devices = GPUManager().get_devices()

    assert (devices[0].is_available, devices[0].error_message) == (False, LOST)
    assert (devices[1].is_available, devices[1].error_message) == (True, None)
    assert devices[1].ecc_mode == "enabled"


def test_lost_when_reading_the_field_values(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[0].errors["field_values"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    assert_lost_alone(fake_nvml)


def test_lost_in_one_field_value_return_code(fake_nvml: ModuleType) -> None:
    """nvmlDeviceGetFieldValues succeeds, but one value says the GPU is lost."""
    fake_nvml.STATE.gpus[0].errors["ecc_errors"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    assert_lost_alone(fake_nvml)
    assert fake_nvml.CALLS["nvmlDeviceGetTotalEccErrors"] == 0  # no per-counter fallback


def test_lost_in_a_counter_read_one_by_one(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.field_values = False
    fake_nvml.STATE.gpus[0].errors["ecc_errors"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    assert_lost_alone(fake_nvml)


@pytest.mark.parametrize(
    "query",
    [
        "mig_mode",  # nvmlDeviceGetMigMode
        "mig_count",  # nvmlDeviceGetMaxMigDeviceCount
        "mig_handle",  # nvmlDeviceGetMigDeviceHandleByIndex
        "mig_memory",  # a MIG device's own fields
        "mig_uuid",
        "mig_gpu_instance_id",
    ],
)
def test_lost_in_a_mig_call(fake_nvml: ModuleType, query: str) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    fake_nvml.STATE.gpus[0].errors[query] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    devices = GPUManager().get_devices()

    assert (devices[0].is_available, devices[0].error_message) == (False, LOST)
    assert devices[0].mig_devices == []
    assert devices[1].is_available is True


def test_lost_in_a_mig_call_while_listing_processes(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    fake_nvml.STATE.gpus[0].errors["mig_handle"] = fake_nvml.NVML_ERROR_GPU_IS_LOST
    fake_nvml.STATE.gpus[1].processes = [fake_nvml.FakeProcess(77, 1024 * 1024)]

    processes, errors = GPUManager().get_processes()

    assert errors == {"0": LOST}
    assert [(p.gpu_index, p.pid) for p in processes] == [(1, 77)]


def test_lost_when_sampling_process_utilization(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    fake_nvml.STATE.gpus[0].errors["process_utilization"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    processes, errors = GPUManager().get_processes()

    assert errors == {"0": LOST}
    assert {p.gpu_index for p in processes} == {1}
    assert len(processes) == 3


def test_lost_when_sampling_is_said_by_the_api(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    fake_nvml.STATE.gpus[1].errors["process_utilization"] = fake_nvml.NVML_ERROR_GPU_IS_LOST

    with override_settings(GPU_MONITOR=OPEN):
        body = client.get("/api/gpu/devices/1/processes").json()

    assert body == {"processes": [], "count": 0, "gpu_errors": {"1": LOST}}
