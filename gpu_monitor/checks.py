"""System checks. Ids are never reused; every id is listed in the README.

- gpu_monitor.E001: ``GPU_MONITOR`` has a key this app does not know.
- gpu_monitor.E002: ``GPU_MONITOR`` or one of its values has the wrong type.
- gpu_monitor.E003: a dotted path in ``GPU_MONITOR`` cannot be imported.
- gpu_monitor.W001: NVML is not available in this process.
- gpu_monitor.W002 (deploy): the GPU endpoints are open to anonymous users.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from gpu_monitor.conf import CLASS_LIST_KEYS, DEFAULTS, conf
from gpu_monitor.manager import get_manager


@register("gpu_monitor")
def check_nvml(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.W001: NVML is not available in this process."""
    reason = get_manager().error_message
    if reason is None:
        return []
    return [
        Warning(
            f"NVML is not available: {reason}. The GPU endpoints will report no GPUs.",
            hint=(
                "Install the NVIDIA driver (it provides libnvidia-ml.so.1), and run this "
                "process with access to /dev/nvidia* (in a container: the NVIDIA container "
                "runtime, e.g. `docker run --gpus all`)."
            ),
            id="gpu_monitor.W001",
        )
    ]


@register("gpu_monitor", Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.E001 to E003: the GPU_MONITOR setting is well formed."""
    raw = conf.raw
    if not isinstance(raw, dict):
        return [
            Error(
                f"GPU_MONITOR must be a dict, not {type(raw).__name__}.",
                hint="For example: GPU_MONITOR = {'PERMISSION_CLASSES': [...]}.",
                id="gpu_monitor.E002",
            )
        ]
    errors: list[CheckMessage] = []
    for key in raw:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            errors.append(
                Error(
                    f"GPU_MONITOR has an unknown key {key!r}.",
                    hint=f"{hint}Known keys: {', '.join(DEFAULTS)}.",
                    id="gpu_monitor.E001",
                )
            )
    for key in CLASS_LIST_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
            errors.append(
                Error(
                    f"GPU_MONITOR[{key!r}] must be a list of dotted paths, not {value!r}.",
                    hint=f"For example: {key!r}: ['rest_framework.permissions.IsAuthenticated'].",
                    id="gpu_monitor.E002",
                )
            )
            continue
        for path in value:
            try:
                import_string(path)
            except ImportError as exc:
                errors.append(
                    Error(
                        f"GPU_MONITOR[{key!r}] names {path!r}, which cannot be imported: {exc}",
                        hint="Check the spelling and that the package is installed.",
                        id="gpu_monitor.E003",
                    )
                )
    return errors


@register("gpu_monitor", Tags.security, deploy=True)
def check_anonymous_access(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.W002: with DEBUG off, anonymous users can read the GPU endpoints."""
    if settings.DEBUG or not _anonymous_allowed():
        return []
    return [
        Warning(
            "The GPU endpoints are open to anonymous users.",
            hint=(
                "They reveal the GPU models, their use and the driver and CUDA versions, "
                "which helps an attacker. Set GPU_MONITOR['PERMISSION_CLASSES'] (or "
                "REST_FRAMEWORK['DEFAULT_PERMISSION_CLASSES']), e.g. to "
                "['rest_framework.permissions.IsAuthenticated']."
            ),
            id="gpu_monitor.W002",
        )
    ]


def _anonymous_allowed() -> bool:
    """Whether the effective permission classes let an anonymous GET through."""
    from django.test import RequestFactory
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    from gpu_monitor.views import DeviceListView

    view = DeviceListView()
    request = Request(RequestFactory().get("/api/gpu/devices"))
    anonymous: Any = api_settings.UNAUTHENTICATED_USER  # a class, or None
    request.user = anonymous() if anonymous else None  # type: ignore[assignment]
    try:
        permissions = view.get_permissions()
        return all(p.has_permission(request, view) for p in permissions)
    except Exception:  # a broken or unusual permission class: E003 or the project says why
        return False
