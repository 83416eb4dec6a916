"""The NVML layer: the one package that talks to NVML (through ``pynvml``).

Everything above it speaks in the dataclasses of ``gpu_monitor.types`` and the two
exceptions it exports, never in pynvml structs or errors. One module per concern:
``session`` (NVML's lifetime in a process, log-once), ``fields`` (reading a field alone,
units), ``device`` (core fields), ``health`` (ECC, remapping, clock events, modes),
``mig`` (MIG mode and slices), ``processes``, ``events`` (XID) and ``gpu_manager``
(``GPUManager``, which asks them). This module keeps the process's one manager.
"""

from __future__ import annotations

import atexit
import threading

from gpu_monitor.manager.events import XidEvents, XidEventsUnavailableError
from gpu_monitor.manager.fields import MIB
from gpu_monitor.manager.gpu_manager import (
    GPUManager,
    GPUNotFoundError,
    NVMLUnavailableError,
    format_cuda_version,
)
from gpu_monitor.types import UNKNOWN_NAME

__all__ = [
    "MIB",
    "UNKNOWN_NAME",
    "GPUManager",
    "GPUNotFoundError",
    "NVMLUnavailableError",
    "XidEvents",
    "XidEventsUnavailableError",
    "format_cuda_version",
    "get_manager",
]

_manager: GPUManager | None = None
_manager_lock = threading.Lock()


def get_manager() -> GPUManager:
    """The process's one GPUManager, created (and NVML initialised) on first use."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = GPUManager()
                atexit.register(_manager._shutdown_nvml)
    return _manager
