"""A GPU check for django-health-check (optional extra ``gpu-monitor[health]``).

from health_check.views import HealthCheckView

path("health/", HealthCheckView.as_view(checks=[
    ("gpu_monitor.health.GPUHealthCheck", {"min_gpu_count": 1, "max_temperature_c": 85}),
]))
"""

from __future__ import annotations

import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from gpu_monitor.manager import get_manager


@dataclasses.dataclass
class GPUHealthCheck(HealthCheck):
    """Healthy when NVML works, at least ``min_gpu_count`` GPUs answer and none is hotter
    than ``max_temperature_c`` (None: no temperature limit)."""

    min_gpu_count: int = 1
    max_temperature_c: int | None = None

    def run(self) -> None:
        manager = get_manager()
        reason = manager.error_message
        if reason is not None:
            raise ServiceUnavailable(f"NVML is not available: {reason}")
        devices = manager.get_devices()
        broken = [f"GPU {d.index}: {d.error_message}" for d in devices if not d.is_available]
        if broken:
            raise ServiceUnavailable("; ".join(broken))
        if len(devices) < self.min_gpu_count:
            raise ServiceUnavailable(
                f"{len(devices)} GPU(s) found, at least {self.min_gpu_count} expected"
            )
        if self.max_temperature_c is not None:
            hot = [
                f"GPU {d.index} at {d.temperature_c} C"
                for d in devices
                if d.temperature_c is not None and d.temperature_c > self.max_temperature_c
            ]
            if hot:
                raise ServiceUnavailable(f"{', '.join(hot)} (limit {self.max_temperature_c} C)")
