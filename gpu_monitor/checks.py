"""System checks. Ids are never reused; every id is listed in docs/settings.md (its
"System checks" table).

- gpu_monitor.E001: ``GPU_MONITOR`` has a key this app does not know.
- gpu_monitor.E002: ``GPU_MONITOR`` or one of its values has the wrong type.
- gpu_monitor.E003: a dotted path in ``GPU_MONITOR`` cannot be imported.
- gpu_monitor.E004: a dotted path imports, but not a class of the right kind (a
  permission, authentication or throttle class instantiable without arguments).
- gpu_monitor.E005: an installed app's ``gpu_monitor`` declaration (``plugins.SubApp``)
  has a field of the wrong type, or a dotted path that does not import.
- gpu_monitor.W001: NVML is not available in this process (one that serves the GPU
  endpoints or checks them: ``commands.nvml_at_start``; ``migrate`` and the like need no
  NVML, and say nothing of it).
- gpu_monitor.W002 (deploy): the GPU endpoints are open to anonymous users.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from gpu_monitor import commands, plugins
from gpu_monitor.conf import conf
from gpu_monitor.manager import get_manager


@register("gpu_monitor")
def check_nvml(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.W001: NVML is not available in this process, where it serves the GPU
    endpoints or checks them (not in ``migrate``, which needs no NVML)."""
    if not commands.nvml_at_start():
        return []
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
    """gpu_monitor.E001 to E004: the GPU_MONITOR setting can be used as it is."""
    return [Error(f"{p.message}.", hint=p.hint, id=p.id) for p in conf.problems()]


@register("gpu_monitor", Tags.compatibility)
def check_sub_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.E005: every sub-app's declaration can be read, each of its dotted paths
    imports (a URL name that does not reverse shows at request time, not here)."""
    return [
        Error(
            f"{config.name}: gpu_monitor.{field} {problem}.",
            hint=(
                f"Fix the gpu_monitor = SubApp(...) of {type(config).__name__} (each field: "
                "docs/sub-apps.md)."
            ),
            id="gpu_monitor.E005",
        )
        for config, field, problem in plugins.problems()
    ]


@register("gpu_monitor", Tags.security, deploy=True)
def check_anonymous_access(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.W002: with DEBUG off, anonymous users can read the GPU endpoints (or a
    permission class fails on an anonymous request, so nobody can tell that they cannot)."""
    if settings.DEBUG or conf.problems():  # E001 to E004 say why; the endpoints answer 503
        return []
    problem = _anonymous_access()
    if problem is None:
        return []
    return [
        Warning(
            problem,
            hint=(
                "They reveal the GPU models, their use and the driver and CUDA versions, "
                "which helps an attacker. Set GPU_MONITOR['PERMISSION_CLASSES'] (or "
                "REST_FRAMEWORK['DEFAULT_PERMISSION_CLASSES']), e.g. to "
                "['rest_framework.permissions.IsAuthenticated']."
            ),
            id="gpu_monitor.W002",
        )
    ]


def _anonymous_access() -> str | None:
    """What is wrong with the permission classes for an anonymous GET, or None when
    they refuse it."""
    from django.test import RequestFactory
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    from gpu_monitor.views import DeviceListView

    view = DeviceListView()
    request = Request(RequestFactory().get("/api/gpu/devices"))
    anonymous: Any = api_settings.UNAUTHENTICATED_USER  # a class, or None
    request.user = anonymous() if anonymous else None  # type: ignore[assignment]
    for permission in view.get_permissions():
        try:
            if not permission.has_permission(request, view):
                return None
        except APIException:  # NotAuthenticated, PermissionDenied: a refusal
            return None
        except Exception as exc:
            return (
                f"{type(permission).__name__} raised {type(exc).__name__} on an anonymous "
                "request: anonymous requests are answered 503, and whether they would be "
                "let in cannot be checked."
            )
    return "The GPU endpoints are open to anonymous users."
