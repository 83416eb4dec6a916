"""App config of the fleet sub-app: it adds the host's state to each recorder tick."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured

from gpu_monitor import plugins


class FleetConfig(AppConfig):
    """The latest state of every host that ``gpu_record`` records, and the hosts API.

    Needs ``gpu_monitor.history`` in ``INSTALLED_APPS`` too: its recorder writes the
    state, through the tick writer declared here.
    """

    name = "gpu_monitor.fleet"
    label = "gpu_monitor_fleet"
    verbose_name = "GPU fleet"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor = plugins.SubApp(
        urls="gpu_monitor.fleet.urls",
        page=plugins.Page("Fleet", "fleet", permissions="PERMISSION_CLASSES"),
        collector="gpu_monitor.fleet.metrics.FleetCollector",  # series with METRICS_FLEET
        tick_writer="gpu_monitor.fleet.writer.write_host_state",
    )

    def ready(self) -> None:
        if not apps.is_installed("gpu_monitor.history"):
            raise ImproperlyConfigured(
                "gpu_monitor.fleet needs gpu_monitor.history: add 'gpu_monitor.history' to "
                "INSTALLED_APPS (its recorder writes the hosts' states)."
            )
