"""The core fields of a GPU: identity, memory, utilisation, temperature, power, clocks."""

from __future__ import annotations

import logging
from typing import Any

from gpu_monitor.manager.fields import FieldReader, mib, text, watts
from gpu_monitor.types import UNKNOWN_NAME

logger = logging.getLogger(__name__)


def read_core(reader: FieldReader, handle: Any) -> dict[str, Any]:
    """The ``GPUDevice`` keyword arguments of the core fields (16 NVML calls)."""
    nvml = reader.nvml
    read = reader.read
    name = read(("name",), lambda: text(nvml.nvmlDeviceGetName(handle)))
    memory = read(
        ("total_memory_mb", "free_memory_mb", "used_memory_mb"),
        lambda: read_memory(reader, handle),
    )
    utilization = read(
        ("utilization_percent", "memory_utilization_percent"),
        lambda: nvml.nvmlDeviceGetUtilizationRates(handle),
    )
    pstate = read(("performance_state",), lambda: int(nvml.nvmlDeviceGetPerformanceState(handle)))
    if pstate is not None and not 0 <= pstate <= 15:  # NVML_PSTATE_UNKNOWN is 32
        reader.fail(("performance_state",), f"Unknown performance state {pstate}")
        pstate = None
    return {
        "name": name if name is not None else UNKNOWN_NAME,
        "total_memory_mb": mib(memory.total) if memory is not None else None,
        "free_memory_mb": mib(memory.free) if memory is not None else None,
        "used_memory_mb": mib(memory.used) if memory is not None else None,
        "utilization_percent": int(utilization.gpu) if utilization is not None else None,
        "temperature_c": read(
            ("temperature_c",),
            lambda: int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
        ),
        "uuid": read(("uuid",), lambda: text(nvml.nvmlDeviceGetUUID(handle))),
        "pci_bus_id": read(("pci_bus_id",), lambda: text(nvml.nvmlDeviceGetPciInfo(handle).busId)),
        "power_draw_w": read(
            ("power_draw_w",), lambda: watts(nvml.nvmlDeviceGetPowerUsage(handle))
        ),
        "power_limit_w": read(
            ("power_limit_w",), lambda: watts(nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        ),
        "fan_speed_percent": read(
            ("fan_speed_percent",), lambda: int(nvml.nvmlDeviceGetFanSpeed(handle))
        ),
        "memory_utilization_percent": int(utilization.memory) if utilization is not None else None,
        "performance_state": f"P{pstate}" if pstate is not None else None,
        "sm_clock_mhz": read(
            ("sm_clock_mhz",),
            lambda: int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
        ),
        "memory_clock_mhz": read(
            ("memory_clock_mhz",),
            lambda: int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
        ),
        "sm_clock_max_mhz": read(
            ("sm_clock_max_mhz",),
            lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)),
        ),
        "memory_clock_max_mhz": read(
            ("memory_clock_max_mhz",),
            lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM)),
        ),
        # Millijoules since the driver was last loaded (Volta and newer): a counter.
        "energy_consumed_j": read(
            ("energy_consumed_j",),
            lambda: joules(nvml.nvmlDeviceGetTotalEnergyConsumption(handle)),
        ),
    }


def joules(millijoules: int) -> float:
    """NVML counts energy in millijoules; the API and Prometheus use joules."""
    return millijoules / 1000


def read_memory(reader: FieldReader, handle: Any) -> Any:
    """Memory as nvidia-smi counts it: v2 (reserved memory not "used"), else v1."""
    session, nvml = reader.session, reader.nvml
    version = getattr(nvml, "nvmlMemory_v2", None)
    if session.memory_v2 and version is not None:
        try:
            return nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
        except TypeError:  # bindings whose nvmlDeviceGetMemoryInfo takes no version
            pass
        except nvml.NVMLError as exc:
            if not session.is_error(exc, "FUNCTION_NOT_FOUND", "ARGUMENT_VERSION_MISMATCH"):
                raise
        logger.debug("NVML memory query v2 unavailable; falling back to v1 accounting")
        session.memory_v2 = False
    return nvml.nvmlDeviceGetMemoryInfo(handle)
