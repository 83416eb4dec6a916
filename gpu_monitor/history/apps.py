"""App config of the optional history sub-app."""

from __future__ import annotations

from django.apps import AppConfig


class HistoryConfig(AppConfig):
    """Samples and events of the GPUs, recorded by ``manage.py gpu_record``."""

    name = "gpu_monitor.history"
    label = "gpu_monitor_history"
    verbose_name = "GPU history"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor_urls = "gpu_monitor.history.urls"  # included by gpu_monitor.urls
