"""App config: starts the process's one GPUManager and registers the system checks."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from django.apps import AppConfig


class GpuMonitorConfig(AppConfig):
    """Initialises NVML once per process; safe to call ``ready()`` more than once.

    Not in ``manage.py <a gpu_monitor command>``: ``ready()`` runs before the command
    has read its ``--verbosity``, so the command initialises NVML itself when it first
    needs it, once its verbosity has set what the loggers say (``gpu_monitor.commands``);
    a command that needs no GPU (``gpu_usage``, ``gpu_fleet``) does not initialise it.
    """

    name = "gpu_monitor"
    verbose_name = "GPU monitor"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from gpu_monitor import checks  # noqa: F401  (registers the checks)
        from gpu_monitor.manager import get_manager

        if not self.runs_own_command(sys.argv):
            get_manager()

    def runs_own_command(self, argv: Sequence[str]) -> bool:
        """Whether ``argv`` runs a management command of this app or of its sub-apps."""
        if len(argv) < 2:
            return False
        from django.core.management import get_commands

        app = get_commands().get(argv[1])  # cached: manage.py looks the command up there too
        return app is not None and (app == self.name or app.startswith(f"{self.name}."))
