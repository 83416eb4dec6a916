"""Plain dataclasses for what the app reports; nothing here knows about NVML or DRF."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

ProcessType = Literal["compute", "graphics", "compute+graphics"]
UNKNOWN_NAME = "Unknown GPU"  # a GPU whose name could not be read
# GPUDevice fields that are not readings from NVML (never in field_errors).
_NOT_READINGS = frozenset(
    {"index", "name", "is_available", "error_message", "field_errors", "mig_devices"}
)


@dataclass(frozen=True)
class GPUDevice:
    """One GPU as read from NVML at one moment.

    A field that could not be read is ``None`` and named in ``field_errors`` with the
    reason. A GPU that cannot be queried at all has ``is_available=False`` and an
    ``error_message``.
    """

    index: int
    name: str
    total_memory_mb: int | None = None
    free_memory_mb: int | None = None
    used_memory_mb: int | None = None
    utilization_percent: int | None = None
    temperature_c: int | None = None
    is_available: bool = True
    error_message: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)
    uuid: str | None = None
    pci_bus_id: str | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    fan_speed_percent: int | None = None
    memory_utilization_percent: int | None = None
    performance_state: str | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    ecc_mode: Literal["enabled", "disabled"] | None = None
    ecc_errors_corrected_volatile: int | None = None
    ecc_errors_uncorrected_volatile: int | None = None
    ecc_errors_corrected_aggregate: int | None = None
    ecc_errors_uncorrected_aggregate: int | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    retired_pages_pending: bool | None = None
    clocks_event_reasons: list[str] | None = None
    persistence_mode: str | None = None
    compute_mode: (
        Literal["default", "exclusive_thread", "prohibited", "exclusive_process"] | None
    ) = None
    encoder_utilization_percent: int | None = None
    decoder_utilization_percent: int | None = None
    mig_mode: str | None = None
    mig_devices: list[MIGDevice] = field(default_factory=list)
    sm_clock_max_mhz: int | None = None
    memory_clock_max_mhz: int | None = None
    energy_consumed_j: float | None = None  # since the driver was last loaded

    @classmethod
    def unavailable(cls, index: int, message: str, uuid: str | None = None) -> GPUDevice:
        """A GPU that could not be queried (lost, or an unexpected error): every reading
        is None and ``field_errors`` names each with ``message``. ``uuid`` is the UUID the
        GPU had when it was last read, if known (so it can still be looked up by it)."""
        unread = {
            f.name: message
            for f in fields(cls)
            if f.name not in _NOT_READINGS and not (f.name == "uuid" and uuid)
        }
        return cls(
            index=index,
            name=UNKNOWN_NAME,
            is_available=False,
            error_message=message,
            field_errors=unread,
            uuid=uuid,
        )

    @property
    def memory_used_percent(self) -> float | None:
        """Used memory as a percentage of the total; None when memory is unknown.

        Derived, so not part of the JSON: the command and the dashboard show it.
        """
        if self.used_memory_mb is None or not self.total_memory_mb:
            return None
        return 100 * self.used_memory_mb / self.total_memory_mb


@dataclass(frozen=True)
class MIGDevice:
    """One MIG slice (a compute instance of a GPU instance) of a MIG-enabled GPU.

    Memory belongs to the GPU instance, so compute instances of one GPU instance show
    the same numbers (as nvidia-smi's "Shared Memory-Usage" does). NVML reports no
    utilisation per MIG device: ``utilization_percent`` is always None, with the reason.
    """

    uuid: str | None
    name: str | None
    gpu_instance_id: int | None
    compute_instance_id: int | None
    total_memory_mb: int | None = None
    used_memory_mb: int | None = None
    free_memory_mb: int | None = None
    utilization_percent: int | None = None
    field_errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GPUProcess:
    """A process using a GPU: what NVML says (pid, type, GPU memory, utilisation, MIG
    instance) and what the host says (user, name, command line, RAM, start time).

    A field that could not be read is None and named in ``field_errors`` with the reason:
    no recent utilisation sample, psutil not installed, a pid this PID namespace cannot
    see, another user's process, a command line hidden by the settings.
    """

    gpu_index: int
    gpu_uuid: str | None
    pid: int
    type: ProcessType
    used_memory_mb: int | None = None
    sm_utilization_percent: int | None = None
    memory_utilization_percent: int | None = None
    username: str | None = None
    name: str | None = None
    command_line: list[str] | None = None
    host_memory_mb: int | None = None
    started_at: str | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    mig_uuid: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GPUProcessesResponse:
    """Processes on the GPUs, and why a GPU's processes could not be listed."""

    processes: list[GPUProcess]
    count: int
    gpu_errors: dict[str, str] = field(default_factory=dict)  # GPU index -> why


@dataclass(frozen=True)
class GPUDevicesResponse:
    """The list of GPUs and how many there are."""

    devices: list[GPUDevice]
    count: int


@dataclass(frozen=True)
class DriverInfo:
    """Versions of the NVIDIA driver, the CUDA driver API and NVML."""

    driver_version: str
    cuda_driver_version: str
    nvml_version: str


@dataclass(frozen=True)
class GPUStatus:
    """A cheap summary for health probes."""

    cuda_available: bool
    device_count: int
    error_message: str | None


@dataclass(frozen=True)
class XidEvent:
    """An XID critical error NVML reported (``xid`` is the code, e.g. 79: GPU fell off
    the bus); ``at`` is when it was received (Unix time), NVML gives no timestamp."""

    gpu_index: int | None
    gpu_uuid: str | None
    xid: int
    at: float
