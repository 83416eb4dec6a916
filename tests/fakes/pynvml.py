"""A fake ``pynvml`` (nvidia-ml-py) built from a real NVIDIA H100 capture.

Used two ways:
- unit tests put this module in ``sys.modules["pynvml"]`` and change ``STATE``;
- benchmarks and end-to-end tests put ``tests/fakes`` first on ``PYTHONPATH`` so that
  ``import pynvml`` finds it in a server process, configured by environment variables:
  ``FAKE_NVML_GPUS`` (number of identical GPUs, default 1) and ``FAKE_NVML_SCENARIO``
  (``healthy``, ``no_nvml`` or ``lost``: the last GPU is lost). ``FAKE_NVML_STATE_FILE``
  names a JSON file of per-GPU overrides (``{"0": {"temperature": 80}}``), re-read when
  it changes, so a test can change the data under a running server.

Values are those of ``shared/reference/h100-80gb-hbm3`` (driver 580.159.04, CUDA 13.0,
nvidia-ml-py 13.610.43). Every call is counted in ``CALLS``. Like the real library,
every query raises ``NVMLError_Uninitialized`` in a process that has not called
``nvmlInit()`` itself (a forked child, for example).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_PSTATE_UNKNOWN = 32
nvmlMemory_v2 = 0x02000028

_ERROR_STRINGS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument version mismatch",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Same contract as pynvml's: ``.value`` is the code, ``str()`` NVML's text."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")


MIB = 1024 * 1024


@dataclass
class FakeGPU:
    """One GPU; ``errors`` maps a query name (e.g. "temperature") to an NVML error code."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
    pci_bus_id: str = "00000000:00:06.0"
    total: int = 85520809984
    free: int = 85017493504
    used_v1: int = 503316480
    used_v2: int = 0
    reserved: int = 503316480
    utilization_gpu: int = 0
    utilization_memory: int = 0
    temperature: int = 34
    power_mw: int = 71071
    power_limit_mw: int = 700000
    pstate: int = 0
    clock_sm: int = 345
    clock_mem: int = 2619
    fan_speed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {"fan_speed": NVML_ERROR_NOT_SUPPORTED})
    handle_error: int | None = None
    raises: Exception | None = None


@dataclass
class FakeState:
    """The whole fake driver."""

    gpus: list[FakeGPU] = field(default_factory=lambda: [FakeGPU()])
    init_error: int | Exception | None = None
    count_error: int | None = None
    driver_version: str = "580.159.04"
    cuda_driver_version: int = 13000
    nvml_version: str = "13.580.159.04"
    strings_as_bytes: bool = False
    memory_v2: bool = True
    initialized_pids: set[int] = field(default_factory=set)
    scenario: str = "healthy"


STATE = FakeState()
CALLS: Counter[str] = Counter()
_state_file_mtime: float | None = None


def make_gpus(count: int, scenario: str = "healthy") -> list[FakeGPU]:
    """``count`` identical H100s; with ``scenario="lost"`` the last one is lost."""
    gpus = [FakeGPU() for _ in range(count)]
    for index, gpu in enumerate(gpus[1:], start=1):  # GPU 0 keeps the captured identity
        gpu.uuid = f"GPU-3a34af56-e2e8-164a-8e46-{index:012x}"
        gpu.pci_bus_id = f"00000000:{index:02X}:06.0"
    if scenario == "lost" and gpus:
        gpus[-1].handle_error = NVML_ERROR_GPU_IS_LOST
    return gpus


def configure(gpus: int = 1, scenario: str = "healthy", **fields: Any) -> FakeState:
    """Reset the fake to ``gpus`` H100s in ``scenario``; ``fields`` override FakeState."""
    global STATE, _state_file_mtime
    STATE = FakeState(gpus=make_gpus(gpus, scenario), scenario=scenario, **fields)
    if scenario == "no_nvml":
        STATE.init_error = NVML_ERROR_LIBRARY_NOT_FOUND
    CALLS.clear()
    _state_file_mtime = None
    return STATE


def _call(name: str) -> None:
    CALLS[name] += 1
    _load_state_file()
    if name not in ("nvmlInit", "nvmlShutdown") and os.getpid() not in STATE.initialized_pids:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)


_STATE_FILE = os.environ.get("FAKE_NVML_STATE_FILE")


def _load_state_file() -> None:
    global _state_file_mtime
    path = _STATE_FILE
    if not path or not os.path.exists(path):
        return
    mtime = os.stat(path).st_mtime
    if mtime == _state_file_mtime:
        return
    _state_file_mtime = mtime
    with open(path) as f:
        overrides = json.load(f)
    base = make_gpus(len(STATE.gpus), STATE.scenario)
    STATE.gpus = [replace(gpu, **overrides.get(str(i), {})) for i, gpu in enumerate(base)]


def _str(value: str) -> str | bytes:
    return value.encode() if STATE.strings_as_bytes else value


@dataclass
class _Handle:
    index: int


def _gpu(handle: _Handle, query: str) -> FakeGPU:
    gpu = STATE.gpus[handle.index]
    if gpu.raises is not None:
        raise gpu.raises
    code = gpu.errors.get(query)
    if code is not None:
        raise NVMLError(code)
    return gpu


@dataclass
class _Memory:
    total: int
    free: int
    used: int
    reserved: int = 0
    version: int = 0


@dataclass
class _Utilization:
    gpu: int
    memory: int


def nvmlInit() -> None:
    _call("nvmlInit")
    error = STATE.init_error
    if isinstance(error, Exception):
        raise error
    if error is not None:
        raise NVMLError(error)
    STATE.initialized_pids.add(os.getpid())


def nvmlShutdown() -> None:
    _call("nvmlShutdown")
    if os.getpid() not in STATE.initialized_pids:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    STATE.initialized_pids.discard(os.getpid())


def nvmlSystemGetDriverVersion() -> str | bytes:
    _call("nvmlSystemGetDriverVersion")
    return _str(STATE.driver_version)


def nvmlSystemGetCudaDriverVersion() -> int:
    _call("nvmlSystemGetCudaDriverVersion")
    return STATE.cuda_driver_version


def nvmlSystemGetNVMLVersion() -> str | bytes:
    _call("nvmlSystemGetNVMLVersion")
    return _str(STATE.nvml_version)


def nvmlDeviceGetCount() -> int:
    _call("nvmlDeviceGetCount")
    if STATE.count_error is not None:
        raise NVMLError(STATE.count_error)
    return len(STATE.gpus)


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    _call("nvmlDeviceGetHandleByIndex")
    if not 0 <= index < len(STATE.gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    error = STATE.gpus[index].handle_error
    if error is not None:
        raise NVMLError(error)
    return _Handle(index)


def nvmlDeviceGetName(handle: _Handle) -> str | bytes:
    _call("nvmlDeviceGetName")
    return _str(_gpu(handle, "name").name)


def nvmlDeviceGetUUID(handle: _Handle) -> str | bytes:
    _call("nvmlDeviceGetUUID")
    return _str(_gpu(handle, "uuid").uuid)


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: int | None = None) -> _Memory:
    _call("nvmlDeviceGetMemoryInfo")
    gpu = _gpu(handle, "memory")
    if not version:
        return _Memory(gpu.total, gpu.free, gpu.used_v1)
    if not STATE.memory_v2:
        raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
    return _Memory(gpu.total, gpu.free, gpu.used_v2, gpu.reserved, version)


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> _Utilization:
    _call("nvmlDeviceGetUtilizationRates")
    gpu = _gpu(handle, "utilization")
    return _Utilization(gpu.utilization_gpu, gpu.utilization_memory)


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    _call("nvmlDeviceGetTemperature")
    return _gpu(handle, "temperature").temperature


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> _Handle:
    _call("nvmlDeviceGetHandleByUUID")
    text = uuid.decode() if isinstance(uuid, bytes) else uuid
    for index, gpu in enumerate(STATE.gpus):
        if gpu.uuid == text:
            if gpu.handle_error is not None:
                raise NVMLError(gpu.handle_error)
            return _Handle(index)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceGetIndex(handle: _Handle) -> int:
    _call("nvmlDeviceGetIndex")
    return handle.index


@dataclass
class _PciInfo:
    busId: str | bytes  # pynvml's struct field name


def nvmlDeviceGetPciInfo(handle: _Handle) -> _PciInfo:
    _call("nvmlDeviceGetPciInfo")
    return _PciInfo(_str(_gpu(handle, "pci").pci_bus_id))


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    _call("nvmlDeviceGetPowerUsage")
    return _gpu(handle, "power_usage").power_mw


def nvmlDeviceGetEnforcedPowerLimit(handle: _Handle) -> int:
    _call("nvmlDeviceGetEnforcedPowerLimit")
    return _gpu(handle, "power_limit").power_limit_mw


def nvmlDeviceGetFanSpeed(handle: _Handle) -> int:
    _call("nvmlDeviceGetFanSpeed")
    return _gpu(handle, "fan_speed").fan_speed


def nvmlDeviceGetPerformanceState(handle: _Handle) -> int:
    _call("nvmlDeviceGetPerformanceState")
    return _gpu(handle, "pstate").pstate


def nvmlDeviceGetClockInfo(handle: _Handle, clock_type: int) -> int:
    _call("nvmlDeviceGetClockInfo")
    gpu = _gpu(handle, "clock_sm" if clock_type == NVML_CLOCK_SM else "clock_mem")
    return gpu.clock_sm if clock_type == NVML_CLOCK_SM else gpu.clock_mem


configure(
    int(os.environ.get("FAKE_NVML_GPUS", "1")),
    os.environ.get("FAKE_NVML_SCENARIO", "healthy"),
)
