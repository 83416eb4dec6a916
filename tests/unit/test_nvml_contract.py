"""The fake pynvml rejects what real NVML rejects, so that a wrong argument in the
manager (a clock type, a temperature sensor, a memory-info version) fails a test instead
of reading the right capture value by luck."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from gpu_monitor.manager import GPUManager


@pytest.fixture
def handle(fake_nvml: ModuleType) -> object:
    fake_nvml.nvmlInit()
    return fake_nvml.nvmlDeviceGetHandleByIndex(0)


def nvml_error(
    fake_nvml: ModuleType, call: Callable[..., object], *args: object, **kwargs: object
) -> int:
    """The NVML error code ``call(*args, **kwargs)`` raises."""
    with pytest.raises(fake_nvml.NVMLError) as raised:
        call(*args, **kwargs)
    code: int = raised.value.value
    return code


def test_each_clock_type_answers_its_own_capture_value(
    fake_nvml: ModuleType, handle: object
) -> None:
    # nvidia-smi -q "Clocks" of the H100 capture: Graphics 345, SM 345, Memory 2619,
    # Video 765 MHz.
    clock = fake_nvml.nvmlDeviceGetClockInfo
    assert clock(handle, fake_nvml.NVML_CLOCK_GRAPHICS) == 345
    assert clock(handle, fake_nvml.NVML_CLOCK_SM) == 345
    assert clock(handle, fake_nvml.NVML_CLOCK_MEM) == 2619
    assert clock(handle, fake_nvml.NVML_CLOCK_VIDEO) == 765
    assert nvml_error(fake_nvml, clock, handle, fake_nvml.NVML_CLOCK_COUNT) == (
        fake_nvml.NVML_ERROR_INVALID_ARGUMENT
    )


def test_only_the_gpu_temperature_sensor_is_read(fake_nvml: ModuleType, handle: object) -> None:
    temperature = fake_nvml.nvmlDeviceGetTemperature
    assert temperature(handle, fake_nvml.NVML_TEMPERATURE_GPU) == 34
    assert nvml_error(fake_nvml, temperature, handle, fake_nvml.NVML_TEMPERATURE_GPU_MAX) == (
        fake_nvml.NVML_ERROR_NOT_SUPPORTED
    )
    assert nvml_error(fake_nvml, temperature, handle, fake_nvml.NVML_TEMPERATURE_COUNT) == (
        fake_nvml.NVML_ERROR_INVALID_ARGUMENT
    )


def test_memory_info_knows_v1_and_v2_only(fake_nvml: ModuleType, handle: object) -> None:
    memory = fake_nvml.nvmlDeviceGetMemoryInfo
    assert memory(handle).used == 503316480  # v1: reserved memory counted as used
    assert memory(handle, version=fake_nvml.nvmlMemory_v2).used == 0
    for version in (1, fake_nvml.nvmlMemory_v2 + 1, 0x01000028):
        assert nvml_error(fake_nvml, memory, handle, version=version) == (
            fake_nvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
        )


def test_memory_info_of_a_mig_device_checks_the_version_too(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")
    fake_nvml.nvmlInit()
    mig = fake_nvml.nvmlDeviceGetMigDeviceHandleByIndex(fake_nvml.nvmlDeviceGetHandleByIndex(0), 2)

    assert fake_nvml.nvmlDeviceGetMemoryInfo(mig, version=fake_nvml.nvmlMemory_v2).used == (
        17 * 1024 * 1024
    )
    assert nvml_error(fake_nvml, fake_nvml.nvmlDeviceGetMemoryInfo, mig, version=7) == (
        fake_nvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    )


def test_the_manager_asks_sm_and_memory_clocks_by_their_types(fake_nvml: ModuleType) -> None:
    """Four different clocks: each field must come from its own clock type."""
    gpu = fake_nvml.STATE.gpus[0]
    gpu.clock_graphics, gpu.clock_sm, gpu.clock_mem, gpu.clock_video = 1410, 1755, 2619, 1545

    device = GPUManager().get_devices()[0]

    assert (device.sm_clock_mhz, device.memory_clock_mhz) == (1755, 2619)
    assert "sm_clock_mhz" not in device.field_errors
    assert "memory_clock_mhz" not in device.field_errors


def test_the_manager_reads_the_gpu_sensor_and_v2_memory(fake_nvml: ModuleType) -> None:
    device = GPUManager().get_devices()[0]

    assert device.temperature_c == 34
    assert device.used_memory_mb == 0  # v2: a wrong version would fall back to v1's 480
    assert "temperature_c" not in device.field_errors


def test_a_fan_is_read_in_percent(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="fan")

    device = GPUManager().get_devices()[0]

    assert device.fan_speed_percent == fake_nvml.FAN_PERCENT == 38
    assert "fan_speed_percent" not in device.field_errors
