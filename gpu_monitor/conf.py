"""The ``GPU_MONITOR`` settings dict, read live on every access.

Like django-cors-headers: no cache and no signal, so ``override_settings`` takes effect
on the next request. Wrong types and unknown keys are reported by system checks
(``gpu_monitor.checks``), never by an exception here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "PERMISSION_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_PERMISSION_CLASSES
    "AUTHENTICATION_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES
    "THROTTLE_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES
}
CLASS_LIST_KEYS = ("PERMISSION_CLASSES", "AUTHENTICATION_CLASSES", "THROTTLE_CLASSES")


class Settings:
    """Typed views of ``settings.GPU_MONITOR``; every property reads the setting again."""

    @property
    def raw(self) -> Any:
        return getattr(settings, "GPU_MONITOR", {})

    def get(self, key: str) -> Any:
        raw = self.raw
        if isinstance(raw, dict) and key in raw:
            return raw[key]
        return DEFAULTS[key]

    def class_paths(self, key: str) -> list[str] | None:
        """A key of CLASS_LIST_KEYS: dotted paths, or None for REST_FRAMEWORK's default."""
        value: list[str] | None = self.get(key)
        return value


conf = Settings()
