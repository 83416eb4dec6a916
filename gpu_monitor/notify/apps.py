"""App config of the notify sub-app: ``gpu_notify`` tells each holder of an idle GPU, and
records every notice it sends."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured

from gpu_monitor import plugins


class NotifyConfig(AppConfig):
    """Notices (e-mail, and a webhook) to the users who hold a GPU idle, a digest to the
    admins, and the record of each notice (the admin lists them).

    Needs ``gpu_monitor.usage`` (and so ``gpu_monitor.history``) in ``INSTALLED_APPS``: the
    idle-held GPUs are the usage sub-app's holds.
    """

    name = "gpu_monitor.notify"
    label = "gpu_monitor_notify"
    verbose_name = "GPU notices"
    default_auto_field = "django.db.models.BigAutoField"
    gpu_monitor = plugins.SubApp(maintenance="gpu_monitor.notify.run.prune_notices")

    def ready(self) -> None:
        if not apps.is_installed("gpu_monitor.usage"):
            raise ImproperlyConfigured(
                "gpu_monitor.notify needs gpu_monitor.usage: add 'gpu_monitor.usage' (and "
                "'gpu_monitor.history') to INSTALLED_APPS (the idle-held GPUs it tells "
                "their holders about are the usage sub-app's holds)."
            )
