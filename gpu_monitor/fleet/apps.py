"""App config of the fleet sub-app: it adds the host's state to each recorder tick."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured


class FleetConfig(AppConfig):
    """The latest state of every host that ``gpu_record`` records, and the hosts API.

    Needs ``gpu_monitor.history`` in ``INSTALLED_APPS`` too: its recorder writes the
    state, through the tick writer registered here.
    """

    name = "gpu_monitor.fleet"
    label = "gpu_monitor_fleet"
    verbose_name = "GPU fleet"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor_urls = "gpu_monitor.fleet.urls"  # included by gpu_monitor.urls
    gpu_monitor_page = ("Fleet", "fleet")  # in the pages' nav: (label, URL name)
    gpu_monitor_collector = "gpu_monitor.fleet.metrics.FleetCollector"  # METRICS_FLEET

    def ready(self) -> None:
        if not apps.is_installed("gpu_monitor.history"):
            raise ImproperlyConfigured(
                "gpu_monitor.fleet needs gpu_monitor.history: add 'gpu_monitor.history' to "
                "INSTALLED_APPS (its recorder writes the hosts' states)."
            )
        from gpu_monitor.fleet.writer import write_host_state
        from gpu_monitor.history import tick_writers

        tick_writers.register(write_host_state)
