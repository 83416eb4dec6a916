"""The example project's URLs plus Django's floors: bare views over the same data."""

import dataclasses
import os
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path

from example_project.urls import urlpatterns as example_urlpatterns
from gpu_monitor.manager import get_manager

MIB = 1024 * 1024


def bare_devices(request: HttpRequest) -> JsonResponse:
    """The same dataclasses through JsonResponse: no DRF at all."""
    devices = get_manager().get_devices()
    return JsonResponse(
        {"devices": [dataclasses.asdict(d) for d in devices], "count": len(devices)}
    )


def bare_processes(request: HttpRequest) -> JsonResponse:
    """The manager's process lists (NVML's fields as dataclasses) through JsonResponse,
    without DRF and without host (psutil) lookups."""
    processes, errors = get_manager().get_processes()
    return JsonResponse(
        {
            "processes": [dataclasses.asdict(p) for p in processes],
            "count": len(processes),
            "gpu_errors": errors,
        }
    )


_nvml_pid: int | None = None


def raw_nvml() -> Any:
    """pynvml, initialised once in this process (gunicorn workers are forked)."""
    global _nvml_pid
    import pynvml

    if _nvml_pid != os.getpid():
        pynvml.nvmlInit()
        _nvml_pid = os.getpid()
    return pynvml


def bare_nvml_processes(request: HttpRequest) -> JsonResponse:
    """The floor of the processes endpoint: ``nvmlDeviceGetComputeRunningProcesses`` of
    each GPU straight into JsonResponse, rows with the API's keys; no manager, no
    dataclass, no DRF, no host lookups, no utilisation samples, no sorting."""
    nvml = raw_nvml()
    rows = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        for info in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            memory = info.usedGpuMemory
            rows.append(
                {
                    "gpu_index": index,
                    "gpu_uuid": None,
                    "pid": info.pid,
                    "type": "compute",
                    "used_memory_mb": None if memory is None else -(-memory // MIB),
                    "sm_utilization_percent": None,
                    "memory_utilization_percent": None,
                    "username": None,
                    "name": None,
                    "command_line": None,
                    "host_memory_mb": None,
                    "started_at": None,
                    "gpu_instance_id": None,
                    "compute_instance_id": None,
                    "mig_uuid": None,
                    "field_errors": {},
                }
            )
    return JsonResponse({"processes": rows, "count": len(rows), "gpu_errors": {}})


urlpatterns = [
    path("bare/devices", bare_devices),
    path("bare/processes", bare_processes),
    path("bare/nvml-processes", bare_nvml_processes),
    *example_urlpatterns,
]
