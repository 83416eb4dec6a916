"""A fake ``pynvml`` (nvidia-ml-py) built from a real NVIDIA H100 capture.

Used two ways:
- unit tests put this module in ``sys.modules["pynvml"]`` and change ``STATE``;
- benchmarks and end-to-end tests put ``tests/fakes`` first on ``PYTHONPATH`` so that
  ``import pynvml`` finds it in a server process, configured by environment variables:
  ``FAKE_NVML_GPUS`` (number of identical GPUs, default 1) and ``FAKE_NVML_SCENARIO``
  (``healthy``; ``no_nvml``; ``lost``: the last GPU is lost; ``load``: each GPU runs the
  three processes of the H100 load capture; ``mig``: GPU 0 is the H200 of the MIG
  capture, five MIG devices and three processes in one of them; ``fan``: every GPU has a
  fan, at ``FAN_PERCENT``), and
  ``FAKE_NVML_PROCESSES`` (N processes per GPU, with pids of processes that exist on
  this machine, for benchmarks). ``FAKE_NVML_STATE_FILE``
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
import time
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
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_UNKNOWN = 999

NVML_SUCCESS = 0
NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_VALUE_TYPE_UNSIGNED_INT = 1
NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3
NVML_FI_DEV_ECC_CURRENT = 1
NVML_FI_DEV_ECC_SBE_VOL_TOTAL = 3
NVML_FI_DEV_ECC_DBE_VOL_TOTAL = 4
NVML_FI_DEV_ECC_SBE_AGG_TOTAL = 5
NVML_FI_DEV_ECC_DBE_AGG_TOTAL = 6
NVML_FI_DEV_RETIRED_PENDING = 31
NVML_FI_DEV_REMAPPED_COR = 142
NVML_FI_DEV_REMAPPED_UNC = 143
NVML_FI_DEV_REMAPPED_PENDING = 144
NVML_FI_DEV_REMAPPED_FAILURE = 145
nvmlEventTypeXidCriticalError = 0x0000000000000008

NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_GPU_MAX = 1  # in the bindings; no capture shows a value for it
NVML_TEMPERATURE_COUNT = 2
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3
NVML_CLOCK_COUNT = 4
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
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Same contract as pynvml's: ``.value`` is the code, ``str()`` NVML's text."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")


class NVMLLibraryMismatchError(Exception):
    """What the bindings raise for an unversioned call the driver lacks (v3 processes)."""


MIB = 1024 * 1024
NOT_IN_MIG = 0xFFFFFFFF
# nvmlDeviceGetTotalEnergyConsumption (millijoules since the driver loaded): no capture
# here has a value (nvidia-smi does not show it), so a made-up one: about 7 days at the
# H100's idle 71 W.
ENERGY_MJ = 7 * 86400 * 71070  # 42,983,136,000 mJ = 42.98 MJ


@dataclass
class FakeProcess:
    """A process in NVML's lists, shaped like the bindings' friendly objects."""

    pid: int
    usedGpuMemory: int | None  # bytes; None: NVML_VALUE_NOT_AVAILABLE
    gpuInstanceId: int = NOT_IN_MIG
    computeInstanceId: int = NOT_IN_MIG
    graphics: bool = False  # in the graphics list (too, with compute=True)
    compute: bool = True


@dataclass
class FakeSample:
    """An nvmlDeviceGetProcessUtilization sample; ``age_s``: how old it is."""

    pid: int
    smUtil: int
    memUtil: int
    age_s: float = 1.0


@dataclass
class FakeMIG:
    """A MIG device, from the H200 MIG capture."""

    uuid: str
    name: str
    gpu_instance_id: int
    compute_instance_id: int
    total: int
    used: int


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
    # nvidia-smi -q "Clocks" of the capture: each clock type answers its own value.
    clock_graphics: int = 345
    clock_sm: int = 345
    clock_mem: int = 2619
    clock_video: int = 765
    # nvidia-smi -q "Max Clocks" of the capture (nvidia-smi clocks.max.*).
    clock_max_graphics: int = 1980
    clock_max_sm: int = 1980
    clock_max_mem: int = 2619
    clock_max_video: int = 1545
    energy_mj: int = ENERGY_MJ
    fan_speed: int = 0
    ecc_mode: int = 1
    ecc_corrected_volatile: int = 0
    ecc_uncorrected_volatile: int = 0
    ecc_corrected_aggregate: int = 0
    ecc_uncorrected_aggregate: int = 0
    remapped_rows: tuple[int, int, int, int] = (0, 0, 0, 0)  # corr, unc, pending, failure
    retired_pages_pending: int = 0
    clocks_event_reasons: int = 0x1  # gpu_idle, as on the idle H100
    persistence_mode: int = 1
    compute_mode: int = 0
    encoder_utilization: int = 0
    decoder_utilization: int = 0
    mig_mode: int = 0
    mig_devices: list[FakeMIG | None] = field(default_factory=list)  # None: a hole
    processes: list[FakeProcess] = field(default_factory=list)
    samples: list[FakeSample] = field(default_factory=list)
    # The H100 has no fan and no retired-pages counter (remapped rows replace it).
    errors: dict[str, int] = field(
        default_factory=lambda: {
            "fan_speed": NVML_ERROR_NOT_SUPPORTED,
            "retired_pages": NVML_ERROR_NOT_SUPPORTED,
        }
    )
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
    processes_v3: bool = True  # False: a driver before 510.39 (only the v2 functions)
    field_values: bool = True  # False: a driver without nvmlDeviceGetFieldValues
    events_error: int | None = None  # nvmlDeviceRegisterEvents raises this
    xid_events: list[tuple[int, int]] = field(default_factory=list)  # (gpu index, xid)


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
    if scenario == "load":
        for gpu in gpus:
            gpu.processes = [FakeProcess(pid, mib * MIB) for pid, mib in LOAD_PROCESSES]
            gpu.samples = [FakeSample(11345, 99, 10)]
            gpu.utilization_gpu, gpu.utilization_memory = 100, 11
            gpu.used_v2, gpu.clocks_event_reasons = 19818 * MIB, 0
    if scenario == "mig" and gpus:
        make_mig(gpus[0])
    if scenario == "fan":
        for gpu in gpus:
            make_fan(gpu)
    per_gpu = int(os.environ.get("FAKE_NVML_PROCESSES", "0"))
    if per_gpu:
        pids = live_pids()
        for index, gpu in enumerate(gpus):
            chosen = [pids[(index * per_gpu + n) % len(pids)] for n in range(per_gpu)]
            gpu.processes = [FakeProcess(pid, (256 + n) * MIB) for n, pid in enumerate(chosen)]
            gpu.samples = [FakeSample(pid, 50, 10) for pid in chosen[::2]]
    return gpus


# The H100 load capture: two memhog processes and gpu_burn (nvidia-smi pmon: 99% SM).
LOAD_PROCESSES = [(11327, 2566), (11328, 1542), (11345, 15690)]


def live_pids() -> list[int]:
    """Pids of processes that exist on this machine (for host lookups in benchmarks)."""
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit()) or [os.getpid()]


def make_mig(gpu: FakeGPU) -> None:
    """The H200 of the MIG capture under load (driver 590.48.01): MIG on, five devices,
    parent utilisation, encoder, decoder and remapped rows not supported."""
    gpu.name, gpu.pci_bus_id = "NVIDIA H200", "00000000:83:00.0"
    gpu.total, gpu.reserved = 143771 * MIB, 614 * MIB
    gpu.used_v2, gpu.free = 16959 * MIB, 126199 * MIB
    gpu.temperature, gpu.power_mw, gpu.clock_sm, gpu.clock_mem = 36, 295000, 1980, 3201
    gpu.clock_graphics, gpu.clock_video = 1980, 1545
    gpu.clock_max_mem = 3201  # the H200's HBM3e; the other max clocks are the H100's
    gpu.mig_mode, gpu.clocks_event_reasons = 1, 0
    gpu.mig_devices = [
        FakeMIG(
            "MIG-00000000-0000-0000-0000-000000000000",
            "NVIDIA H200 MIG 1c.3g.71gb",
            2,
            0,
            71424 * MIB,
            16925 * MIB,
        ),
        FakeMIG(
            "MIG-00000001-0000-0000-0000-000000000001",
            "NVIDIA H200 MIG 2c.3g.71gb",
            2,
            1,
            71424 * MIB,
            16925 * MIB,
        ),
        FakeMIG(
            "MIG-00000002-0000-0000-0000-000000000002",
            "NVIDIA H200 MIG 2g.35gb",
            3,
            0,
            33280 * MIB,
            17 * MIB,
        ),
        FakeMIG(
            "MIG-00000003-0000-0000-0000-000000000003",
            "NVIDIA H200 MIG 1g.18gb",
            9,
            0,
            16384 * MIB,
            9 * MIB,
        ),
        FakeMIG(
            "MIG-00000004-0000-0000-0000-000000000004",
            "NVIDIA H200 MIG 1g.18gb",
            10,
            0,
            16384 * MIB,
            9 * MIB,
        ),
    ]
    gpu.processes = [
        FakeProcess(12249, 2194 * MIB, 2, 1),
        FakeProcess(12250, 1170 * MIB, 2, 1),
        FakeProcess(12267, 13526 * MIB, 2, 1),
    ]
    for query in ("utilization", "encoder", "decoder", "remapped_rows", "process_utilization"):
        gpu.errors[query] = NVML_ERROR_NOT_SUPPORTED


# No capture here has a fan (the H100 and H200 SXM report N/A): a made-up speed, in
# NVML's unit, percent of the fan's maximum (nvidia-smi fan.speed [%]; it can exceed 100).
FAN_PERCENT = 38


def make_fan(gpu: FakeGPU, percent: int = FAN_PERCENT) -> None:
    """Give ``gpu`` a fan turning at ``percent`` (an air-cooled card)."""
    gpu.errors.pop("fan_speed", None)
    gpu.fan_speed = percent


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
    STATE.gpus = [replace(gpu, **_decoded(overrides.get(str(i), {}))) for i, gpu in enumerate(base)]
    STATE.xid_events += [tuple(event) for event in overrides.get("xid", [])]  # once per change


def _decoded(override: dict[str, Any]) -> dict[str, Any]:
    """JSON overrides: processes and samples as lists of objects."""
    if "processes" in override:
        override["processes"] = [FakeProcess(**p) for p in override["processes"]]
    if "samples" in override:
        override["samples"] = [FakeSample(**p) for p in override["samples"]]
    return override


def _str(value: str) -> str | bytes:
    return value.encode() if STATE.strings_as_bytes else value


@dataclass
class _Handle:
    index: int
    mig_slot: int | None = None  # a MIG device handle: its slot on GPU ``index``


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


def _mig(handle: _Handle, query: str) -> FakeMIG:
    gpu = _gpu(handle, f"mig_{query}")
    assert handle.mig_slot is not None
    device = gpu.mig_devices[handle.mig_slot]
    assert device is not None
    return device


def nvmlDeviceGetName(handle: _Handle) -> str | bytes:
    _call("nvmlDeviceGetName")
    if handle.mig_slot is not None:
        return _str(_mig(handle, "name").name)
    return _str(_gpu(handle, "name").name)


def nvmlDeviceGetUUID(handle: _Handle) -> str | bytes:
    _call("nvmlDeviceGetUUID")
    if handle.mig_slot is not None:
        return _str(_mig(handle, "uuid").uuid)
    return _str(_gpu(handle, "uuid").uuid)


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: int | None = None) -> _Memory:
    """v1 without a version (as the bindings: 0 and None too), v2 with ``nvmlMemory_v2``;
    the driver rejects any other version with ArgumentVersionMismatch."""
    _call("nvmlDeviceGetMemoryInfo")
    if version and not STATE.memory_v2:
        raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
    if version and version != nvmlMemory_v2:
        raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    if handle.mig_slot is not None:
        mig = _mig(handle, "memory")
        return _Memory(mig.total, mig.total - mig.used, mig.used, 0, version or 0)
    gpu = _gpu(handle, "memory")
    if not version:
        return _Memory(gpu.total, gpu.free, gpu.used_v1)
    return _Memory(gpu.total, gpu.free, gpu.used_v2, gpu.reserved, version)


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> _Utilization:
    _call("nvmlDeviceGetUtilizationRates")
    gpu = _gpu(handle, "utilization")
    return _Utilization(gpu.utilization_gpu, gpu.utilization_memory)


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    """Only ``NVML_TEMPERATURE_GPU`` was captured: any other sensor the bindings know
    is NotSupported here, anything else InvalidArgument (nvml.h)."""
    _call("nvmlDeviceGetTemperature")
    gpu = _gpu(handle, "temperature")
    if sensor == NVML_TEMPERATURE_GPU:
        return gpu.temperature
    if sensor in range(NVML_TEMPERATURE_COUNT):
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> _Handle:
    _call("nvmlDeviceGetHandleByUUID")
    text = uuid.decode() if isinstance(uuid, bytes) else uuid
    for index, gpu in enumerate(STATE.gpus):
        slots = [slot for slot, mig in enumerate(gpu.mig_devices) if mig and mig.uuid == text]
        if gpu.uuid == text or slots:
            if gpu.handle_error is not None:
                raise NVMLError(gpu.handle_error)
            return _Handle(index, slots[0] if slots else None)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceGetIndex(handle: _Handle) -> int:
    _call("nvmlDeviceGetIndex")
    if handle.mig_slot is not None:  # the real NVML does not index MIG devices so
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
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


_CLOCKS = {
    NVML_CLOCK_GRAPHICS: "clock_graphics",
    NVML_CLOCK_SM: "clock_sm",
    NVML_CLOCK_MEM: "clock_mem",
    NVML_CLOCK_VIDEO: "clock_video",
}


def nvmlDeviceGetClockInfo(handle: _Handle, clock_type: int) -> int:
    """The current clock of ``clock_type`` (each its own value); InvalidArgument for a
    type NVML does not know."""
    _call("nvmlDeviceGetClockInfo")
    name = _CLOCKS.get(clock_type)
    if name is None:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    value: int = getattr(_gpu(handle, name), name)
    return value


_MAX_CLOCKS = {
    NVML_CLOCK_GRAPHICS: "clock_max_graphics",
    NVML_CLOCK_SM: "clock_max_sm",
    NVML_CLOCK_MEM: "clock_max_mem",
    NVML_CLOCK_VIDEO: "clock_max_video",
}


def nvmlDeviceGetMaxClockInfo(handle: _Handle, clock_type: int) -> int:
    """The maximum clock of ``clock_type``; InvalidArgument for a type NVML does not know."""
    _call("nvmlDeviceGetMaxClockInfo")
    name = _MAX_CLOCKS.get(clock_type)
    if name is None:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    value: int = getattr(_gpu(handle, name), name)
    return value


def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
    _call("nvmlDeviceGetTotalEnergyConsumption")
    return _gpu(handle, "energy").energy_mj


# -- health and modes -----------------------------------------------------------------


def nvmlDeviceGetEccMode(handle: _Handle) -> list[int]:
    _call("nvmlDeviceGetEccMode")
    mode = _gpu(handle, "ecc_mode").ecc_mode
    return [mode, mode]


def _ecc(gpu: FakeGPU, error_type: int, counter: int) -> int:
    kind = "corrected" if error_type == NVML_MEMORY_ERROR_TYPE_CORRECTED else "uncorrected"
    scope = "volatile" if counter == NVML_VOLATILE_ECC else "aggregate"
    value: int = getattr(gpu, f"ecc_{kind}_{scope}")
    return value


def nvmlDeviceGetTotalEccErrors(handle: _Handle, error_type: int, counter: int) -> int:
    _call("nvmlDeviceGetTotalEccErrors")
    return _ecc(_gpu(handle, "ecc_errors"), error_type, counter)


def nvmlDeviceGetRemappedRows(handle: _Handle) -> tuple[int, int, int, int]:
    _call("nvmlDeviceGetRemappedRows")
    return _gpu(handle, "remapped_rows").remapped_rows


def nvmlDeviceGetRetiredPagesPendingStatus(handle: _Handle) -> int:
    _call("nvmlDeviceGetRetiredPagesPendingStatus")
    return _gpu(handle, "retired_pages").retired_pages_pending


@dataclass
class _Value:
    uiVal: int = 0
    ullVal: int = 0


@dataclass
class _FieldValue:
    fieldId: int
    valueType: int
    nvmlReturn: int
    value: _Value


# field id -> (query whose error it shares, value of a FakeGPU, value type)
_FIELDS: dict[int, tuple[str, Any, int]] = {
    NVML_FI_DEV_ECC_CURRENT: ("ecc_mode", lambda g: g.ecc_mode, NVML_VALUE_TYPE_UNSIGNED_INT),
    NVML_FI_DEV_ECC_SBE_VOL_TOTAL: (
        "ecc_errors",
        lambda g: g.ecc_corrected_volatile,
        NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
    ),
    NVML_FI_DEV_ECC_DBE_VOL_TOTAL: (
        "ecc_errors",
        lambda g: g.ecc_uncorrected_volatile,
        NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
    ),
    NVML_FI_DEV_ECC_SBE_AGG_TOTAL: (
        "ecc_errors",
        lambda g: g.ecc_corrected_aggregate,
        NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
    ),
    NVML_FI_DEV_ECC_DBE_AGG_TOTAL: (
        "ecc_errors",
        lambda g: g.ecc_uncorrected_aggregate,
        NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
    ),
    NVML_FI_DEV_REMAPPED_COR: (
        "remapped_rows",
        lambda g: g.remapped_rows[0],
        NVML_VALUE_TYPE_UNSIGNED_INT,
    ),
    NVML_FI_DEV_REMAPPED_UNC: (
        "remapped_rows",
        lambda g: g.remapped_rows[1],
        NVML_VALUE_TYPE_UNSIGNED_INT,
    ),
    NVML_FI_DEV_REMAPPED_PENDING: (
        "remapped_rows",
        lambda g: g.remapped_rows[2],
        NVML_VALUE_TYPE_UNSIGNED_INT,
    ),
    NVML_FI_DEV_REMAPPED_FAILURE: (
        "remapped_rows",
        lambda g: g.remapped_rows[3],
        NVML_VALUE_TYPE_UNSIGNED_INT,
    ),
    NVML_FI_DEV_RETIRED_PENDING: (
        "retired_pages",
        lambda g: g.retired_pages_pending,
        NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
    ),
}


def nvmlDeviceGetFieldValues(handle: _Handle, field_ids: list[int]) -> list[_FieldValue]:
    """One call for many counters: each value carries its own return code."""
    _call("nvmlDeviceGetFieldValues")
    if not STATE.field_values:
        raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
    gpu = _gpu(handle, "field_values")
    values = []
    for field_id in field_ids:
        query, value_of, value_type = _FIELDS[field_id]
        code = gpu.errors.get(query, NVML_SUCCESS)
        value = 0 if code else int(value_of(gpu))
        member = (
            _Value(uiVal=value)
            if value_type == NVML_VALUE_TYPE_UNSIGNED_INT
            else _Value(ullVal=value)
        )
        values.append(_FieldValue(field_id, value_type, code, member))
    return values


def nvmlDeviceGetCurrentClocksEventReasons(handle: _Handle) -> int:
    _call("nvmlDeviceGetCurrentClocksEventReasons")
    return _gpu(handle, "clocks_event_reasons").clocks_event_reasons


def nvmlDeviceGetPersistenceMode(handle: _Handle) -> int:
    _call("nvmlDeviceGetPersistenceMode")
    return _gpu(handle, "persistence").persistence_mode


def nvmlDeviceGetComputeMode(handle: _Handle) -> int:
    _call("nvmlDeviceGetComputeMode")
    return _gpu(handle, "compute_mode").compute_mode


def nvmlDeviceGetEncoderUtilization(handle: _Handle) -> list[int]:
    _call("nvmlDeviceGetEncoderUtilization")
    return [_gpu(handle, "encoder").encoder_utilization, 100000]


def nvmlDeviceGetDecoderUtilization(handle: _Handle) -> list[int]:
    _call("nvmlDeviceGetDecoderUtilization")
    return [_gpu(handle, "decoder").decoder_utilization, 100000]


# -- MIG ------------------------------------------------------------------------------


def nvmlDeviceGetMigMode(handle: _Handle) -> list[int]:
    _call("nvmlDeviceGetMigMode")
    mode = _gpu(handle, "mig_mode").mig_mode
    return [mode, mode]


def nvmlDeviceGetMaxMigDeviceCount(handle: _Handle) -> int:
    _call("nvmlDeviceGetMaxMigDeviceCount")
    gpu = _gpu(handle, "mig_count")
    return len(gpu.mig_devices) if gpu.mig_mode else 0


def nvmlDeviceGetMigDeviceHandleByIndex(handle: _Handle, slot: int) -> _Handle:
    _call("nvmlDeviceGetMigDeviceHandleByIndex")
    gpu = _gpu(handle, "mig_handle")
    if not 0 <= slot < len(gpu.mig_devices) or gpu.mig_devices[slot] is None:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return _Handle(handle.index, slot)


def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle: _Handle) -> _Handle:
    _call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
    return _Handle(handle.index)


def nvmlDeviceGetGpuInstanceId(handle: _Handle) -> int:
    _call("nvmlDeviceGetGpuInstanceId")
    return _mig(handle, "gpu_instance_id").gpu_instance_id


def nvmlDeviceGetComputeInstanceId(handle: _Handle) -> int:
    _call("nvmlDeviceGetComputeInstanceId")
    return _mig(handle, "compute_instance_id").compute_instance_id


# -- processes ------------------------------------------------------------------------


def _processes(handle: _Handle, kind: str) -> list[FakeProcess]:
    gpu = _gpu(handle, f"processes_{kind}")
    return [p for p in gpu.processes if getattr(p, kind)]  # callers never mutate them


def nvmlDeviceGetComputeRunningProcesses(handle: _Handle) -> list[FakeProcess]:
    _call("nvmlDeviceGetComputeRunningProcesses")
    if not STATE.processes_v3:
        raise NVMLLibraryMismatchError("Unversioned function called ...")
    return _processes(handle, "compute")


def nvmlDeviceGetGraphicsRunningProcesses(handle: _Handle) -> list[FakeProcess]:
    _call("nvmlDeviceGetGraphicsRunningProcesses")
    if not STATE.processes_v3:
        raise NVMLLibraryMismatchError("Unversioned function called ...")
    return _processes(handle, "graphics")


def nvmlDeviceGetComputeRunningProcesses_v2(handle: _Handle) -> list[FakeProcess]:
    _call("nvmlDeviceGetComputeRunningProcesses_v2")
    return _processes(handle, "compute")


def nvmlDeviceGetGraphicsRunningProcesses_v2(handle: _Handle) -> list[FakeProcess]:
    _call("nvmlDeviceGetGraphicsRunningProcesses_v2")
    return _processes(handle, "graphics")


@dataclass
class _Sample:
    pid: int
    timeStamp: int  # microseconds since the epoch
    smUtil: int
    memUtil: int
    encUtil: int = 0
    decUtil: int = 0


def nvmlDeviceGetProcessUtilization(handle: _Handle, since_us: int) -> list[_Sample]:
    """Samples newer than ``since_us``; NotFound when there is none, as NVML does."""
    _call("nvmlDeviceGetProcessUtilization")
    gpu = _gpu(handle, "process_utilization")
    now = time.time()
    samples = [
        _Sample(s.pid, int((now - s.age_s) * 1_000_000), s.smUtil, s.memUtil) for s in gpu.samples
    ]
    samples = [s for s in samples if s.timeStamp > since_us]
    if not samples:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return samples


# -- events ---------------------------------------------------------------------------


@dataclass
class _EventSet:
    gpus: list[int] = field(default_factory=list)
    freed: bool = False


@dataclass
class _EventData:
    device: _Handle
    eventType: int
    eventData: int
    gpuInstanceId: int = NOT_IN_MIG
    computeInstanceId: int = NOT_IN_MIG


EVENT_SETS: list[_EventSet] = []


def nvmlEventSetCreate() -> _EventSet:
    _call("nvmlEventSetCreate")
    event_set = _EventSet()
    EVENT_SETS.append(event_set)
    return event_set


def nvmlDeviceRegisterEvents(handle: _Handle, event_types: int, event_set: _EventSet) -> None:
    _call("nvmlDeviceRegisterEvents")
    if STATE.events_error is not None:
        raise NVMLError(STATE.events_error)
    _gpu(handle, "events")
    event_set.gpus.append(handle.index)


def nvmlEventSetWait_v2(event_set: _EventSet, timeout_ms: int) -> _EventData:
    """The next queued XID of a registered GPU; after a short wait, Timeout, as NVML."""
    _call("nvmlEventSetWait_v2")
    for position, (index, xid) in enumerate(STATE.xid_events):
        if index in event_set.gpus:
            del STATE.xid_events[position]
            return _EventData(_Handle(index), nvmlEventTypeXidCriticalError, xid)
    time.sleep(min(timeout_ms, 50) / 1000)
    raise NVMLError(NVML_ERROR_TIMEOUT)


def nvmlEventSetFree(event_set: _EventSet) -> None:
    _call("nvmlEventSetFree")
    event_set.freed = True


configure(
    int(os.environ.get("FAKE_NVML_GPUS", "1")),
    os.environ.get("FAKE_NVML_SCENARIO", "healthy"),
)
