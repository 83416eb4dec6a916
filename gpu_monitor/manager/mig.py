"""MIG: the mode of a GPU and its slices (MIG devices), read only, never changed."""

from __future__ import annotations

import logging
from typing import Any

from gpu_monitor.manager.device import read_memory
from gpu_monitor.manager.fields import FieldReader, mib, text
from gpu_monitor.manager.health import ENABLED
from gpu_monitor.types import MIGDevice

logger = logging.getLogger(__name__)
NO_UTILIZATION = "Not reported per MIG device by NVML"


def read_mig_mode(reader: FieldReader, handle: Any) -> str | None:
    """ "enabled" or "disabled" (current mode); None on a GPU without MIG."""
    nvml = reader.nvml
    return reader.read(("mig_mode",), lambda: ENABLED[nvml.nvmlDeviceGetMigMode(handle)[0]])


def read_mig_devices(reader: FieldReader, handle: Any) -> list[MIGDevice]:
    """Every MIG device of a MIG-enabled GPU, in index order.

    Indexes are sparse: a hole raises NotFound (or InvalidArgument) and is skipped;
    stopping there would miss the slices after it.
    """
    nvml = reader.nvml
    count = reader.read(("mig_devices",), lambda: int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)))
    devices = []
    for slot in range(count or 0):
        try:
            mig_handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except nvml.NVMLError as exc:
            if reader.session.is_error(exc, "NOT_FOUND", "INVALID_ARGUMENT"):
                continue
            if reader.session.is_error(exc, "GPU_IS_LOST"):
                raise
            reader.fail(("mig_devices",), str(exc), logged=True)
            continue
        devices.append(read_mig_device(reader, mig_handle, slot))
    return devices


def read_mig_device(parent: FieldReader, handle: Any, slot: int) -> MIGDevice:
    """One MIG device: identity, instance ids and its GPU instance's memory."""
    nvml = parent.nvml
    reader = FieldReader(parent.session, parent.log, parent.index, f"{parent.key}.mig{slot}")
    read = reader.read
    reader.fail(("utilization_percent",), NO_UTILIZATION)
    memory = read(
        ("total_memory_mb", "used_memory_mb", "free_memory_mb"),
        lambda: read_memory(reader, handle),
    )
    device = MIGDevice(
        uuid=read(("uuid",), lambda: text(nvml.nvmlDeviceGetUUID(handle))),
        name=read(("name",), lambda: text(nvml.nvmlDeviceGetName(handle))),
        gpu_instance_id=read(
            ("gpu_instance_id",), lambda: int(nvml.nvmlDeviceGetGpuInstanceId(handle))
        ),
        compute_instance_id=read(
            ("compute_instance_id",), lambda: int(nvml.nvmlDeviceGetComputeInstanceId(handle))
        ),
        total_memory_mb=mib(memory.total) if memory is not None else None,
        used_memory_mb=mib(memory.used) if memory is not None else None,
        free_memory_mb=mib(memory.free) if memory is not None else None,
        field_errors=reader.errors,
    )
    return device


def parent_handle(nvml: Any, handle: Any, uuid: str) -> Any:
    """The GPU a MIG device belongs to (``handle`` itself for a whole GPU's UUID)."""
    if not uuid.startswith("MIG-"):
        return handle
    return nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
