"""Median and p99 of each NVML call gpu_monitor makes, 1000 calls each, on GPU 0.

Prints one JSON object: call name -> [median us, p99 us], or the NVML error it raised.
Run by bench/gpu_check.py on a machine with a GPU; needs only pynvml.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import pynvml

from gpu_monitor.manager.health import COUNTERS


def calls(h: Any) -> dict[str, Callable[[], Any]]:
    nvml = pynvml
    ids = [getattr(nvml, name) for _, name, _ in COUNTERS]
    return {
        "nvmlDeviceGetCount": nvml.nvmlDeviceGetCount,
        "nvmlDeviceGetHandleByIndex": lambda: nvml.nvmlDeviceGetHandleByIndex(0),
        "nvmlDeviceGetName": lambda: nvml.nvmlDeviceGetName(h),
        "nvmlDeviceGetMemoryInfo v2": lambda: nvml.nvmlDeviceGetMemoryInfo(
            h, version=nvml.nvmlMemory_v2
        ),
        "nvmlDeviceGetUtilizationRates": lambda: nvml.nvmlDeviceGetUtilizationRates(h),
        "nvmlDeviceGetTemperature": lambda: nvml.nvmlDeviceGetTemperature(h, 0),
        "nvmlDeviceGetUUID": lambda: nvml.nvmlDeviceGetUUID(h),
        "nvmlDeviceGetPciInfo": lambda: nvml.nvmlDeviceGetPciInfo(h),
        "nvmlDeviceGetPowerUsage": lambda: nvml.nvmlDeviceGetPowerUsage(h),
        "nvmlDeviceGetEnforcedPowerLimit": lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h),
        "nvmlDeviceGetFanSpeed": lambda: nvml.nvmlDeviceGetFanSpeed(h),
        "nvmlDeviceGetPerformanceState": lambda: nvml.nvmlDeviceGetPerformanceState(h),
        "nvmlDeviceGetClockInfo SM": lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM),
        "nvmlDeviceGetClockInfo MEM": lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM),
        "nvmlDeviceGetFieldValues (10 counters)": lambda: nvml.nvmlDeviceGetFieldValues(h, ids),
        "nvmlDeviceGetEccMode": lambda: nvml.nvmlDeviceGetEccMode(h),
        "nvmlDeviceGetTotalEccErrors (one counter)": lambda: nvml.nvmlDeviceGetTotalEccErrors(
            h, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
        ),
        "nvmlDeviceGetRemappedRows": lambda: nvml.nvmlDeviceGetRemappedRows(h),
        "nvmlDeviceGetRetiredPagesPendingStatus": (
            lambda: nvml.nvmlDeviceGetRetiredPagesPendingStatus(h)
        ),
        "nvmlDeviceGetCurrentClocksEventReasons": (
            lambda: nvml.nvmlDeviceGetCurrentClocksEventReasons(h)
        ),
        "nvmlDeviceGetPersistenceMode": lambda: nvml.nvmlDeviceGetPersistenceMode(h),
        "nvmlDeviceGetComputeMode": lambda: nvml.nvmlDeviceGetComputeMode(h),
        "nvmlDeviceGetEncoderUtilization": lambda: nvml.nvmlDeviceGetEncoderUtilization(h),
        "nvmlDeviceGetDecoderUtilization": lambda: nvml.nvmlDeviceGetDecoderUtilization(h),
        "nvmlDeviceGetMigMode": lambda: nvml.nvmlDeviceGetMigMode(h),
        "nvmlDeviceGetComputeRunningProcesses": (
            lambda: nvml.nvmlDeviceGetComputeRunningProcesses(h)
        ),
        "nvmlDeviceGetGraphicsRunningProcesses": (
            lambda: nvml.nvmlDeviceGetGraphicsRunningProcesses(h)
        ),
    }


def main() -> None:
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    rows: dict[str, Any] = {}
    for name, call in calls(handle).items():
        times = []
        try:
            for _ in range(1000):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
        except pynvml.NVMLError as exc:
            rows[name] = str(exc)
            continue
        times.sort()
        rows[name] = [1e6 * statistics.median(times), 1e6 * times[int(len(times) * 0.99)]]
    pynvml.nvmlShutdown()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
