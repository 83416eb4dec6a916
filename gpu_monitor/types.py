"""Plain dataclasses for what the app reports; nothing here knows about NVML or DRF."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    @property
    def memory_used_percent(self) -> float | None:
        """Used memory as a percentage of the total; None when memory is unknown.

        Derived, so not part of the JSON: the command and the dashboard show it.
        """
        if self.used_memory_mb is None or not self.total_memory_mb:
            return None
        return 100 * self.used_memory_mb / self.total_memory_mb


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
