"""The example project's URLs plus Django's floors: bare views over the same data."""

import dataclasses
import json
import os
import time
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
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


def bare_api_processes(request: HttpRequest) -> HttpResponse:
    """The fair floor of GET api/gpu/processes (issue 27): the same JSON bytes (the same
    rows, NVML calls, host fields from the same host-detail cache, the same order) built
    as plain dicts from raw NVML and encoded with ``json.dumps`` as DRF's renderer does;
    no manager, no dataclass, no DRF. Only the non-MIG case: ``bench/bypass.py``
    checks that its bytes are the API's."""
    from gpu_monitor import host
    from gpu_monitor.conf import conf
    from gpu_monitor.manager import processes as nvml_processes

    nvml = raw_nvml()
    seen_at = time.time()
    since_us = int((seen_at - nvml_processes.SAMPLE_WINDOW_S) * 1_000_000)
    rows: list[dict[str, Any]] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        assert nvml.nvmlDeviceGetMigMode(handle)[0] != 1  # NVML_DEVICE_MIG_ENABLE
        listed: dict[int, list[Any]] = {}
        for kind, listing in (
            ("compute", nvml.nvmlDeviceGetComputeRunningProcesses),
            ("graphics", nvml.nvmlDeviceGetGraphicsRunningProcesses),
        ):
            for info in listing(handle):
                if info.pid in nvml_processes.INVALID_PIDS:
                    continue
                entry = listed.get(info.pid)
                if entry is None:
                    listed[info.pid] = [kind, info]
                else:
                    entry[0] += "+" + kind
                    if entry[1].usedGpuMemory is None:
                        entry[1] = info
        samples: dict[int, Any] = {}
        try:
            for sample in nvml.nvmlDeviceGetProcessUtilization(handle, since_us):
                latest = samples.get(sample.pid)
                if latest is None or sample.timeStamp > latest.timeStamp:
                    samples[sample.pid] = sample
        except nvml.NVMLError as exc:  # NOT_FOUND: no sample
            if exc.value != nvml.NVML_ERROR_NOT_FOUND:
                raise
        for pid, (kind, info) in listed.items():
            memory, sample = info.usedGpuMemory, samples.get(pid)
            errors = {}
            if memory is None:
                errors["used_memory_mb"] = nvml_processes.NO_MEMORY
            if sample is None:
                errors["sm_utilization_percent"] = nvml_processes.NO_SAMPLE
                errors["memory_utilization_percent"] = nvml_processes.NO_SAMPLE
            rows.append(
                {
                    "gpu_index": index,
                    "gpu_uuid": uuid,
                    "pid": pid,
                    "type": kind,
                    "used_memory_mb": None if memory is None else -(-memory // MIB),
                    "sm_utilization_percent": None if sample is None else sample.smUtil,
                    "memory_utilization_percent": None if sample is None else sample.memUtil,
                    "username": None,
                    "name": None,
                    "command_line": None,
                    "host_memory_mb": None,
                    "started_at": None,
                    "gpu_instance_id": None,
                    "compute_instance_id": None,
                    "mig_uuid": None,
                    "field_errors": errors,
                }
            )
    rows.sort(key=lambda r: (r["gpu_index"], -(r["used_memory_mb"] or -1), r["pid"]))
    pids = list(dict.fromkeys(row["pid"] for row in rows))
    details = host.host_details(pids, seen_at, conf.get("PROCESS_COMMAND_LINE"))
    for row in rows:
        fields, errors = details[row["pid"]]
        row.update(fields)
        if errors:
            row["field_errors"] = {**row["field_errors"], **errors}
    body = {"processes": rows, "count": len(rows), "gpu_errors": {}}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return HttpResponse(text.encode(), content_type="application/json")


urlpatterns = [
    path("bare/devices", bare_devices),
    path("bare/processes", bare_processes),
    path("bare/nvml-processes", bare_nvml_processes),
    path("bare/api-processes", bare_api_processes),
    *example_urlpatterns,
]
