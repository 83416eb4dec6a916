"""App config: starts the process's one GPUManager and registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig


class GpuMonitorConfig(AppConfig):
    """Initialises NVML once per process; safe to call ``ready()`` more than once."""

    name = "gpu_monitor"
    verbose_name = "GPU monitor"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from gpu_monitor import checks  # noqa: F401  (registers the checks)
        from gpu_monitor.manager import get_manager

        get_manager()
