"""App config: starts the process's one GPUManager and registers the system checks."""

from __future__ import annotations

import sys

from django.apps import AppConfig


class GpuMonitorConfig(AppConfig):
    """Initialises NVML once per process; safe to call ``ready()`` more than once.

    Only in a process that serves the GPU endpoints or checks them
    (``gpu_monitor.commands.nvml_at_start``: a WSGI or ASGI server, ``runserver``'s
    serving child, ``check``, a script): a command that reads the database (``migrate``,
    ``gpu_fleet``, ``gpu_usage``) needs no NVML, and ``gpu_devices`` and ``gpu_record``
    initialise it themselves once their ``--verbosity`` has set what the loggers say
    (``gpu_monitor.commands``).
    """

    name = "gpu_monitor"
    verbose_name = "GPU monitor"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from gpu_monitor import checks  # noqa: F401  (registers the checks)
        from gpu_monitor.commands import nvml_at_start
        from gpu_monitor.manager import get_manager

        if nvml_at_start(sys.argv):
            get_manager()
