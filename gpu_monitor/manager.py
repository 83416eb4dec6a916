"""GPUManager: the one module that talks to NVML (through ``pynvml``).

Everything above this module speaks in the dataclasses of ``gpu_monitor.types`` and
the two exceptions defined here, never in pynvml structs or errors.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from gpu_monitor.types import DriverInfo, GPUDevice, GPUStatus

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIB = 1024 * 1024
UNKNOWN_NAME = "Unknown GPU"


class NVMLUnavailableError(Exception):
    """NVML cannot be used in this process; ``str()`` is the reason."""


class GPUNotFoundError(LookupError):
    """No GPU answers to the requested index."""


def format_cuda_version(value: int) -> str:
    """Format NVML's CUDA driver version int as nvidia-smi does (13000 -> "13.0")."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def _mib(size: int) -> int:
    """Bytes to whole MiB, rounded up as nvidia-smi does.

    On a real H200, NVML said free = 150109880320 B (143155.94 MiB) and reserved =
    644939776 B (615.06 MiB); nvidia-smi showed 143156 and 616 MiB. Flooring would
    disagree with nvidia-smi by 1 MiB whenever a value is not a whole number of MiB.
    """
    return -(-size // MIB)


def _watts(milliwatts: int) -> float:
    """NVML reports power in milliwatts; nvidia-smi shows watts with two decimals."""
    return round(milliwatts / 1000, 2)


def _text(value: bytes | str) -> str:
    """NVML strings are ``bytes`` in older bindings and ``str`` in newer ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class GPUManager:
    """Reads GPUs and driver information live from NVML.

    NVML is initialised once per process (again in a forked child) and never per call;
    nothing is cached between calls. When NVML cannot be used, the manager is
    "unavailable": it reports no GPUs and keeps the reason in ``error_message``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._nvml_initialized = False
        self._init_pid: int | None = None
        self._error_message: str | None = None
        self._memory_v2 = True
        self._reported: dict[str, str] = {}
        self._init_nvml()

    # -- process lifetime -------------------------------------------------------------

    def _init_nvml(self) -> None:
        """Initialise NVML in this process; never raises."""
        with self._lock:
            self._init_nvml_locked()

    def _init_nvml_locked(self) -> None:
        self._init_pid = os.getpid()
        self._nvml_initialized = False
        try:
            import pynvml
        except ImportError as exc:
            self._init_failed(f"the pynvml module (nvidia-ml-py) could not be imported: {exc}")
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self._init_failed(str(exc))
            return
        except Exception as exc:  # a broken library can raise anything; stay unavailable
            self._init_failed(f"{type(exc).__name__}: {exc}")
            return
        self._nvml = pynvml
        self._nvml_initialized = True
        self._error_message = None
        try:
            count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # initialisation must never raise
            logger.warning("NVML initialized, but the GPU count could not be read: %s", exc)
        else:
            logger.info("NVML initialized successfully. Found %d GPU(s)", count)

    def _init_failed(self, reason: str) -> None:
        self._error_message = reason
        logger.warning("NVML initialization failed: %s. GPU features disabled.", reason)

    def _ensure_initialized(self) -> bool:
        """Initialise again in a process forked after initialisation; True if usable."""
        if self._init_pid != os.getpid():
            with self._lock:
                if self._init_pid != os.getpid():
                    logger.debug(
                        "Process %d forked after NVML init: initialising again", os.getpid()
                    )
                    self._init_nvml_locked()
        return self._nvml_initialized

    def _shutdown_nvml(self) -> None:
        """Shut NVML down if this process initialised it; never raises."""
        with self._lock:
            if not self._nvml_initialized or self._init_pid != os.getpid():
                return
            self._nvml_initialized = False
            self._error_message = "NVML has been shut down in this process"
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                logger.debug("nvmlShutdown failed", exc_info=True)

    @property
    def error_message(self) -> str | None:
        """Why NVML is unavailable, or None when it is available."""
        self._ensure_initialized()
        return self._error_message

    # -- queries ----------------------------------------------------------------------

    def get_status(self) -> GPUStatus:
        """Whether NVML works and how many GPUs it sees (one NVML call)."""
        if not self._ensure_initialized():
            return GPUStatus(
                cuda_available=False, device_count=0, error_message=self._error_message
            )
        try:
            count = int(self._nvml.nvmlDeviceGetCount())
        except Exception as exc:
            self._report("count", logging.ERROR, "Error reading the GPU count: %s", exc)
            return GPUStatus(False, 0, f"the GPU count could not be read: {exc}")
        self._reported.pop("count", None)
        return GPUStatus(cuda_available=count > 0, device_count=count, error_message=None)

    def is_cuda_available(self) -> bool:
        """True when NVML is usable and sees at least one GPU."""
        return self.get_status().cuda_available

    def get_devices(self) -> list[GPUDevice]:
        """Every GPU, in index order; ``[]`` when NVML is unavailable."""
        return self.get_status_and_devices()[1]

    def get_status_and_devices(self) -> tuple[GPUStatus, list[GPUDevice]]:
        """The status and every GPU, from a single count lookup."""
        status = self.get_status()
        if not self._nvml_initialized:
            logger.debug("NVML not initialized, returning empty device list")
        return status, [self._query_device(index) for index in range(status.device_count)]

    def get_device(self, index: int) -> GPUDevice:
        """The GPU at ``index``; raises GPUNotFoundError when there is none."""
        status = self.get_status()
        if not 0 <= index < status.device_count:
            reason = status.error_message or f"{status.device_count} GPU(s) present"
            raise GPUNotFoundError(f"No GPU with index {index} ({reason}).")
        return self._query_device(index)

    def get_device_by_uuid(self, uuid: str) -> GPUDevice:
        """The GPU whose UUID is ``uuid``; raises GPUNotFoundError when there is none."""
        if not self._ensure_initialized():
            raise GPUNotFoundError(f"No GPU with UUID {uuid} ({self._error_message}).")
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByUUID(uuid.encode())
            index = int(nvml.nvmlDeviceGetIndex(handle))
        except nvml.NVMLError as exc:
            if exc.value == nvml.NVML_ERROR_GPU_IS_LOST:
                raise GPUNotFoundError(f"GPU {uuid} is lost.") from exc
            raise GPUNotFoundError(f"No GPU with UUID {uuid} ({exc}).") from exc
        except Exception as exc:  # e.g. bindings rejecting the argument
            logger.debug("UUID lookup of %r failed", uuid, exc_info=True)
            raise GPUNotFoundError(f"No GPU with UUID {uuid} ({type(exc).__name__}).") from exc
        return self._query_device(index, handle)

    def get_driver_info(self) -> DriverInfo:
        """Driver, CUDA and NVML versions; raises NVMLUnavailableError without NVML."""
        if not self._ensure_initialized():
            raise NVMLUnavailableError(self._error_message)
        nvml = self._nvml
        try:
            info = DriverInfo(
                driver_version=_text(nvml.nvmlSystemGetDriverVersion()),
                cuda_driver_version=format_cuda_version(nvml.nvmlSystemGetCudaDriverVersion()),
                nvml_version=_text(nvml.nvmlSystemGetNVMLVersion()),
            )
        except Exception as exc:
            self._report("driver", logging.ERROR, "Error reading driver information: %s", exc)
            raise NVMLUnavailableError(f"driver information could not be read: {exc}") from exc
        self._reported.pop("driver", None)
        return info

    # -- one device -------------------------------------------------------------------

    def _query_device(self, index: int, handle: Any = None) -> GPUDevice:
        key = f"gpu{index}"
        try:
            if handle is None:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            device = self._read_device(index, handle)
        except self._nvml.NVMLError as exc:
            self._report(key, logging.ERROR, "Error querying GPU device %d: %s", index, exc)
            return GPUDevice(
                index=index, name=UNKNOWN_NAME, is_available=False, error_message=str(exc)
            )
        except Exception as exc:
            message = f"Unexpected error: {type(exc).__name__}: {exc}"
            self._report(
                key,
                logging.ERROR,
                "Error querying GPU device %d: %s",
                index,
                message,
                exc_info=True,
            )
            return GPUDevice(
                index=index, name=UNKNOWN_NAME, is_available=False, error_message=message
            )
        self._reported.pop(key, None)
        return device

    def _read_device(self, index: int, handle: Any) -> GPUDevice:
        nvml = self._nvml
        errors: dict[str, str] = {}

        def read(fields: tuple[str, ...], call: Callable[[], T]) -> T | None:
            try:
                value = call()
            except nvml.NVMLError as exc:
                if exc.value == nvml.NVML_ERROR_GPU_IS_LOST:
                    raise
                for name in fields:
                    errors[name] = str(exc)
                if exc.value != nvml.NVML_ERROR_NOT_SUPPORTED:
                    self._report(
                        f"gpu{index}.{fields[0]}",
                        logging.ERROR,
                        "Error querying GPU device %d: %s (%s)",
                        index,
                        exc,
                        ", ".join(fields),
                    )
                return None
            self._reported.pop(f"gpu{index}.{fields[0]}", None)
            return value

        name = read(("name",), lambda: _text(nvml.nvmlDeviceGetName(handle)))
        memory = read(
            ("total_memory_mb", "free_memory_mb", "used_memory_mb"), lambda: self._memory(handle)
        )
        utilization = read(
            ("utilization_percent", "memory_utilization_percent"),
            lambda: nvml.nvmlDeviceGetUtilizationRates(handle),
        )
        pstate = read(
            ("performance_state",), lambda: int(nvml.nvmlDeviceGetPerformanceState(handle))
        )
        if pstate is not None and not 0 <= pstate <= 15:  # NVML_PSTATE_UNKNOWN is 32
            errors["performance_state"] = f"Unknown performance state {pstate}"
            pstate = None
        return GPUDevice(
            index=index,
            name=name if name is not None else UNKNOWN_NAME,
            total_memory_mb=_mib(memory.total) if memory is not None else None,
            free_memory_mb=_mib(memory.free) if memory is not None else None,
            used_memory_mb=_mib(memory.used) if memory is not None else None,
            utilization_percent=int(utilization.gpu) if utilization is not None else None,
            temperature_c=read(
                ("temperature_c",),
                lambda: int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            ),
            uuid=read(("uuid",), lambda: _text(nvml.nvmlDeviceGetUUID(handle))),
            pci_bus_id=read(
                ("pci_bus_id",), lambda: _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
            ),
            power_draw_w=read(
                ("power_draw_w",), lambda: _watts(nvml.nvmlDeviceGetPowerUsage(handle))
            ),
            power_limit_w=read(
                ("power_limit_w",), lambda: _watts(nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
            ),
            fan_speed_percent=read(
                ("fan_speed_percent",), lambda: int(nvml.nvmlDeviceGetFanSpeed(handle))
            ),
            memory_utilization_percent=int(utilization.memory) if utilization is not None else None,
            performance_state=f"P{pstate}" if pstate is not None else None,
            sm_clock_mhz=read(
                ("sm_clock_mhz",),
                lambda: int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            ),
            memory_clock_mhz=read(
                ("memory_clock_mhz",),
                lambda: int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
            ),
            field_errors=errors,
        )

    def _memory(self, handle: Any) -> Any:
        """Memory as nvidia-smi counts it: v2 (reserved memory not "used"), else v1."""
        nvml = self._nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if self._memory_v2 and version is not None:
            try:
                return nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
            except TypeError:  # bindings whose nvmlDeviceGetMemoryInfo takes no version
                pass
            except nvml.NVMLError as exc:
                no_v2 = (
                    nvml.NVML_ERROR_FUNCTION_NOT_FOUND,
                    nvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH,
                )
                if exc.value not in no_v2:
                    raise
            logger.info("NVML memory query v2 unavailable; falling back to v1 accounting")
            self._memory_v2 = False
        return nvml.nvmlDeviceGetMemoryInfo(handle)

    def _report(self, key: str, level: int, msg: str, *args: Any, exc_info: bool = False) -> None:
        """Log a failure at ``level`` when it is new, at DEBUG while it repeats."""
        text = msg % args
        if self._reported.get(key) == text:
            logger.debug(msg, *args, exc_info=exc_info)
            return
        self._reported[key] = text
        logger.log(level, msg, *args, exc_info=exc_info)


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
