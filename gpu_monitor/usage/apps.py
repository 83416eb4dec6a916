"""App config of the usage sub-app: it adds each tick's holders of the GPUs to their
usage rows, and prunes old rows from ``gpu_history_maintain``."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured


class UsageConfig(AppConfig):
    """GPU-hours per user, host, GPU and five-minute period, the GPUs held now, and the
    usage API.

    Needs ``gpu_monitor.history`` in ``INSTALLED_APPS`` too: its recorder reads the
    processes at every tick and hands them to the tick writer registered here.
    """

    name = "gpu_monitor.usage"
    label = "gpu_monitor_usage"
    verbose_name = "GPU usage"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor_urls = "gpu_monitor.usage.urls"  # included by gpu_monitor.urls
    gpu_monitor_page = ("Usage", "usage")  # in the pages' nav: (label, URL name)

    def ready(self) -> None:
        if not apps.is_installed("gpu_monitor.history"):
            raise ImproperlyConfigured(
                "gpu_monitor.usage needs gpu_monitor.history: add 'gpu_monitor.history' to "
                "INSTALLED_APPS (its recorder reads the processes that usage is made of)."
            )
        from gpu_monitor.history import maintenance, tick_writers
        from gpu_monitor.usage.writer import prune_usage, write_usage

        tick_writers.register(write_usage, processes=True)
        maintenance.register(prune_usage)
