"""The framework bypasses of issue 27, item 7, switched on and off in the running process,
so that ``bench/bypass.py`` measures each against the framework path in one run.

- The serializer plan cache (``gpu_monitor.serializers.ReadOnlySerializer``): kept by
  that measure; "folded" here puts DRF's own ``Serializer.to_representation`` back.
- ``new_process`` (a ``GPUProcess`` made without its ``__init__``): folded by that
  measure; a copy of it as it was at commit cf9df0a is kept here to put it back.

``install()`` sets both, ``uninstall()`` puts the code as it is back. Nothing in
``gpu_monitor`` imports this module.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


# -- new_process ----------------------------------------------------------------------------
def new_process(fields: dict[str, Any]) -> Any:
    """A ``GPUProcess`` made without its ``__init__`` (cf9df0a)."""
    from gpu_monitor.types import GPUProcess

    process = object.__new__(GPUProcess)
    object.__setattr__(process, "__dict__", fields)
    return process


def bypass_process(
    gpu_index: int,
    gpu_uuid: str | None,
    pid: int,
    kinds: list[str],
    info: Any,
    sample: Any,
    sample_error: str,
    slices: dict[tuple[int | None, int | None], str | None],
) -> Any:
    """``gpu_monitor.manager.processes._process`` as it was (cf9df0a): the row through
    ``new_process``."""
    from gpu_monitor.manager import processes

    errors: dict[str, str] = {}
    memory = info.usedGpuMemory
    if memory is None:
        errors["used_memory_mb"] = processes.NO_MEMORY
    if sample is None:
        errors["sm_utilization_percent"] = errors["memory_utilization_percent"] = sample_error
    gpu_instance = processes._instance(getattr(info, "gpuInstanceId", None))
    compute_instance = processes._instance(getattr(info, "computeInstanceId", None))
    return new_process(
        {
            "gpu_index": gpu_index,
            "gpu_uuid": gpu_uuid,
            "pid": pid,
            "type": "+".join(kinds),
            "used_memory_mb": None if memory is None else processes.mib(int(memory)),
            "sm_utilization_percent": None if sample is None else int(sample.smUtil),
            "memory_utilization_percent": None if sample is None else int(sample.memUtil),
            "username": None,
            "name": None,
            "command_line": None,
            "host_memory_mb": None,
            "started_at": None,
            "gpu_instance_id": gpu_instance,
            "compute_instance_id": compute_instance,
            "mig_uuid": slices.get((gpu_instance, compute_instance)),
            "field_errors": errors,
        }
    )


_SAVED: dict[tuple[Any, str], Any] = {}


def _swap(owner: Any, name: str, value: Any) -> None:
    _SAVED.setdefault((owner, name), owner.__dict__.get(name))
    setattr(owner, name, value)


def install(plan: bool, rows: bool) -> None:
    """The plan cache (``plan``) and/or ``new_process`` (``rows``) in place of the
    framework path; each one not asked for goes through the framework."""
    uninstall()
    from gpu_monitor import serializers as core

    if not plan:
        _swap(
            core.ReadOnlySerializer, "to_representation", serializers.Serializer.to_representation
        )
    if rows:
        from gpu_monitor import host
        from gpu_monitor.manager import processes

        _swap(processes, "_process", bypass_process)
        if hasattr(host, "new_process"):  # host.with_host's copy of each row
            _swap(host, "new_process", new_process)


def uninstall() -> None:
    for (owner, name), value in _SAVED.items():
        if value is None:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
    _SAVED.clear()
