"""App config of the usage sub-app: it adds each tick's holders of the GPUs to their
usage rows, and prunes old rows from ``gpu_history_maintain``."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured

from gpu_monitor import plugins


class UsageConfig(AppConfig):
    """GPU-hours per user, host, GPU and five-minute period, the GPUs held now, and the
    usage API.

    Needs ``gpu_monitor.history`` in ``INSTALLED_APPS`` too: its recorder reads the
    processes at every tick and hands them to the tick writer declared here.
    """

    name = "gpu_monitor.usage"
    label = "gpu_monitor_usage"
    verbose_name = "GPU usage"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor = plugins.SubApp(
        urls="gpu_monitor.usage.urls",
        # It names people: the process permissions, or any signed-in user (their own
        # row) with USAGE_SELF_SERVICE, as UsageAPIView.check_permissions.
        page=plugins.Page(
            "Usage",
            "usage",
            permissions="PROCESS_PERMISSION_CLASSES",
            self_service="USAGE_SELF_SERVICE",
        ),
        collector="gpu_monitor.usage.metrics.IdleHeldCollector",  # the idle-held GPUs
        tick_writer="gpu_monitor.usage.writer.write_usage",
        tick_writer_processes=True,
        maintenance="gpu_monitor.usage.writer.prune_usage",
    )

    def ready(self) -> None:
        if not apps.is_installed("gpu_monitor.history"):
            raise ImproperlyConfigured(
                "gpu_monitor.usage needs gpu_monitor.history: add 'gpu_monitor.history' to "
                "INSTALLED_APPS (its recorder reads the processes that usage is made of)."
            )
