"""Processes on a GPU as NVML sees them: pid, type, GPU memory, utilisation, MIG slice.

Host details (user, name, command line) are not NVML's: ``gpu_monitor.host`` adds them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from gpu_monitor.manager.fields import mib
from gpu_monitor.manager.session import NVMLSession
from gpu_monitor.types import GPUProcess, MIGDevice, ProcessType

logger = logging.getLogger(__name__)

# Some drivers (535.43 to 535.85) returned garbage pids (gpustat#161, nvitop#75).
INVALID_PIDS = frozenset({0, 0xFFFFFFFF})
NOT_IN_MIG = 0xFFFFFFFF  # gpuInstanceId / computeInstanceId outside a MIG instance
SAMPLE_WINDOW_S = 5  # per-process utilisation: the latest sample of the last seconds
NO_MEMORY = "Not available (NVML reports no per-process memory here)"
NO_SAMPLE = (
    f"No utilization sample in the last {SAMPLE_WINDOW_S} s "
    "(NVML samples only processes that used the GPU)"
)
MIG_NO_SAMPLES = "Not reported on a MIG-enabled GPU by NVML"
TYPES = ("compute", "graphics")


def read_processes(
    session: NVMLSession,
    handle: Any,
    gpu_index: int,
    gpu_uuid: str | None,
    mig_devices: list[MIGDevice] | None,
) -> list[GPUProcess]:
    """The processes on one GPU, a pid in both lists merged into "compute+graphics".

    ``mig_devices``: the GPU's MIG devices when MIG is enabled (None when it is not),
    to name the slice each process runs in.
    """
    found: dict[int, tuple[list[str], Any]] = {}
    for kind in TYPES:
        for info in running_processes(session, handle, kind):
            pid = int(info.pid)
            if pid in INVALID_PIDS:
                logger.debug("GPU %d: NVML listed the invalid pid %d; skipped", gpu_index, pid)
                continue
            kinds, first = found.setdefault(pid, ([], info))
            kinds.append(kind)
            if first is not info and first.usedGpuMemory is None:
                found[pid] = (kinds, info)
    if mig_devices is None:
        samples, sample_error = utilization_samples(session, handle)
    else:
        samples, sample_error = {}, MIG_NO_SAMPLES
    slices = {(d.gpu_instance_id, d.compute_instance_id): d.uuid for d in mig_devices or []}
    return [
        _process(gpu_index, gpu_uuid, pid, kinds, info, samples.get(pid), sample_error, slices)
        for pid, (kinds, info) in found.items()
    ]


def running_processes(session: NVMLSession, handle: Any, kind: str) -> list[Any]:
    """``nvmlDeviceGet{Compute,Graphics}RunningProcesses``: the v3 functions, or v2 on a
    driver before 510.39 (the bindings then raise NVMLLibraryMismatchError)."""
    nvml = session.nvml
    name = f"nvmlDeviceGet{kind.capitalize()}RunningProcesses"
    try:
        return list(getattr(nvml, name)(handle))
    except Exception as exc:
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", ())
        if not (isinstance(exc, mismatch) or session.is_error(exc, "FUNCTION_NOT_FOUND")):
            raise
    return list(getattr(nvml, f"{name}_v2")(handle))


def utilization_samples(session: NVMLSession, handle: Any) -> tuple[dict[int, Any], str]:
    """The latest utilisation sample of each process in the last seconds, and the reason
    a process without one has none."""
    nvml = session.nvml
    since_us = int((time.time() - SAMPLE_WINDOW_S) * 1_000_000)
    try:
        samples = nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
    except nvml.NVMLError as exc:
        if session.is_error(exc, "NOT_FOUND"):  # NVML's way of saying "no sample"
            return {}, NO_SAMPLE
        if session.is_error(exc, "GPU_IS_LOST"):
            raise
        return {}, str(exc)
    latest: dict[int, Any] = {}
    for sample in samples:
        pid = int(sample.pid)
        if pid not in latest or sample.timeStamp > latest[pid].timeStamp:
            latest[pid] = sample
    return latest, NO_SAMPLE


def _instance(value: Any) -> int | None:
    return None if value is None or int(value) == NOT_IN_MIG else int(value)


def _process(
    gpu_index: int,
    gpu_uuid: str | None,
    pid: int,
    kinds: list[str],
    info: Any,
    sample: Any,
    sample_error: str,
    slices: dict[tuple[int | None, int | None], str | None],
) -> GPUProcess:
    errors: dict[str, str] = {}
    memory = info.usedGpuMemory
    if memory is None:
        errors["used_memory_mb"] = NO_MEMORY
    if sample is None:
        errors["sm_utilization_percent"] = errors["memory_utilization_percent"] = sample_error
    gpu_instance = _instance(getattr(info, "gpuInstanceId", None))
    compute_instance = _instance(getattr(info, "computeInstanceId", None))
    return GPUProcess(
        gpu_index=gpu_index,
        gpu_uuid=gpu_uuid,
        pid=pid,
        type=cast(ProcessType, "+".join(kinds)),  # TYPES in order: one of the three
        used_memory_mb=None if memory is None else mib(int(memory)),
        sm_utilization_percent=None if sample is None else int(sample.smUtil),
        memory_utilization_percent=None if sample is None else int(sample.memUtil),
        username=None,  # the host's fields: gpu_monitor.host fills them in
        name=None,
        command_line=None,
        host_memory_mb=None,
        started_at=None,
        gpu_instance_id=gpu_instance,
        compute_instance_id=compute_instance,
        mig_uuid=slices.get((gpu_instance, compute_instance)),
        field_errors=errors,
    )
