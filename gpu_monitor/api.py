"""The fail-closed base of every GPU API view, and the errors views raise."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from gpu_monitor.conf import conf

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

logger = logging.getLogger(__name__)


class ServiceUnavailable(APIException):
    """503: the service needed to answer (NVML) is not available."""

    status_code = 503
    default_detail = "Service temporarily unavailable."
    default_code = "service_unavailable"


_logged_misconfiguration: str | None = None


def configuration_error() -> str | None:
    """The 503 detail while ``GPU_MONITOR`` is misconfigured, else None.

    Logged at ERROR once per change of the problem, then at DEBUG on each request.
    """
    global _logged_misconfiguration
    problems = conf.problems()
    if not problems:
        _logged_misconfiguration = None
        return None
    what = "; ".join(problem.message for problem in problems)
    detail = f"GPU_MONITOR is misconfigured: {what}; run manage.py check"
    level = logging.DEBUG if detail == _logged_misconfiguration else logging.ERROR
    _logged_misconfiguration = detail
    logger.log(level, "%s (every GPU endpoint answers 503 until it is fixed)", detail)
    return detail


def instances(key: str) -> list[Any]:
    """Instances of the classes a GPU_MONITOR key names, or when it is unset of
    REST_FRAMEWORK's ``DEFAULT_<key>``, read on each request (DRF's own view attributes
    are fixed at import time). Only called once ``conf.problems()`` found nothing."""
    paths = conf.class_paths(key)
    if paths is None:
        classes: list[type[Any]] = getattr(api_settings, f"DEFAULT_{key}")
        return [cls() for cls in classes]
    return [import_string(path)() for path in paths]


class GPUMonitorAPIView(APIView):
    """Base view: authentication, permission and throttle classes from ``GPU_MONITOR``,
    falling back to the project's ``REST_FRAMEWORK`` defaults.

    Fails closed: while ``GPU_MONITOR`` is misconfigured every request is a 503 (in the
    negotiated format), raised before authentication, permissions and the handler.
    """

    @functools.cached_property
    def configuration_error(self) -> str | None:
        """Computed once per request (DRF makes a view instance per request)."""
        return configuration_error()

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Called by DRF before its error handling starts: must not raise.
        if self.configuration_error:
            return []
        return instances("AUTHENTICATION_CLASSES")

    def perform_authentication(self, request: Request) -> None:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        super().perform_authentication(request)

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return instances("PERMISSION_CLASSES")

    def check_permissions(self, request: Request) -> None:
        """A permission class that fails with anything but a refusal is a 503 (closed),
        never a 500; W002 reports it at ``check --deploy``."""
        try:
            super().check_permissions(request)
        except APIException:
            raise
        except Exception as exc:
            logger.exception("A permission class failed on %s", request.path)
            raise ServiceUnavailable(
                f"A permission class failed ({type(exc).__name__}); see the server log."
            ) from exc

    def get_throttles(self) -> list[BaseThrottle]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return instances("THROTTLE_CLASSES")


class NotImplementedResponse(APIException):
    """501: an optional feature whose package is not installed."""

    status_code = 501
    default_code = "not_implemented"
