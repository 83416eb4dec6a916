"""App config of the optional history sub-app."""

from __future__ import annotations

from django.apps import AppConfig

from gpu_monitor import plugins


class HistoryConfig(AppConfig):
    """Samples and events of the GPUs, recorded by ``manage.py gpu_record``.

    Its own upkeep (retention, the rollups) is ``gpu_history_maintain``'s, which runs
    the other sub-apps' ``maintenance`` after it.
    """

    name = "gpu_monitor.history"
    label = "gpu_monitor_history"
    verbose_name = "GPU history"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor = plugins.SubApp(
        urls="gpu_monitor.history.urls",
        panel=plugins.Panel(
            template="gpu_monitor/history/_panel.html",
            script="gpu_monitor/history/charts.js",
            context="gpu_monitor.history.panel.context",
        ),
        collector="gpu_monitor.history.metrics.XidCollector",  # the XID errors' series
        # Without the sub-app, its two paths say how to add it (not a bare 404).
        not_installed=plugins.NotInstalled(
            paths=("history", "events"),
            detail=(
                "GPU history is not installed: add 'gpu_monitor.history' to INSTALLED_APPS, "
                "run manage.py migrate, and run manage.py gpu_record."
            ),
            url_name="history",
        ),
    )
