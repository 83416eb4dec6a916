"""GET-only API views: ask the manager, serialize, respond."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.http import HttpResponse
from django.urls import reverse
from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.renderers import (
    BaseRenderer,
    BrowsableAPIRenderer,
    JSONRenderer,
    TemplateHTMLRenderer,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from gpu_monitor import host
from gpu_monitor.conf import conf
from gpu_monitor.manager import GPUNotFoundError, NVMLUnavailableError, get_manager
from gpu_monitor.schema import document
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDeviceSerializer,
    GPUDevicesResponseSerializer,
    GPUProcessesResponseSerializer,
    GPUStatusSerializer,
)
from gpu_monitor.types import GPUDevice, GPUDevicesResponse, GPUProcess, GPUProcessesResponse

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

logger = logging.getLogger(__name__)
UUID_PATTERN = re.compile(r"(GPU|MIG)-[0-9A-Za-z-]{1,80}")


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


def _instances(key: str) -> list[Any]:
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
        return _instances("AUTHENTICATION_CLASSES")

    def perform_authentication(self, request: Request) -> None:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        super().perform_authentication(request)

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return _instances("PERMISSION_CLASSES")

    def get_throttles(self) -> list[BaseThrottle]:
        if self.configuration_error:
            raise ServiceUnavailable(self.configuration_error)
        return _instances("THROTTLE_CLASSES")


@document("devices")
class DeviceListView(GPUMonitorAPIView):
    """Every GPU with memory (MiB), utilisation and temperature. Always 200.

        {"devices": [{"index": 0, "name": "NVIDIA H100 80GB HBM3",
                      "total_memory_mb": 81559, "free_memory_mb": 81079,
                      "used_memory_mb": 0, "utilization_percent": 0,
                      "temperature_c": 34, "is_available": true,
                      "error_message": null, "field_errors": {}}],
         "count": 1}

    Without a GPU or driver: ``{"devices": [], "count": 0}``.
    """

    def get(self, request: Request) -> Response:
        devices = get_manager().get_devices()
        return Response(
            GPUDevicesResponseSerializer(GPUDevicesResponse(devices, len(devices))).data
        )


TOO_LARGE = 10**9  # past any index or interval; int() of 4301+ digits would raise


def whole_number(text: str) -> int | None:
    """A non-negative decimal number of any length from user input, capped at
    ``TOO_LARGE``; None when ``text`` is not one."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) < len(str(TOO_LARGE)) else TOO_LARGE


def shown(text: str, limit: int = 40) -> str:
    """User input as quoted in an error message: repr, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}..."


def gpu_key(key: str) -> int | str:
    """A GPU as named in a URL: an index (int) or a UUID (str); raises NotFound (404)."""
    index = whole_number(key)
    if index == TOO_LARGE:
        raise NotFound(f"No GPU with index {shown(key)}.")
    if index is not None:
        return index
    if UUID_PATTERN.fullmatch(key):
        return key
    raise NotFound(f"No GPU {shown(key)}: use an index (0, 1, ...) or a UUID (GPU-..., MIG-...).")


def find_device(key: str) -> GPUDevice:
    """The GPU named by ``key`` in a URL (an index or a UUID); raises NotFound (404)."""
    manager = get_manager()
    gpu = gpu_key(key)
    try:
        if isinstance(gpu, int):
            return manager.get_device(gpu)
        return manager.get_device_by_uuid(gpu)
    except GPUNotFoundError as exc:
        raise NotFound(str(exc)) from exc


def find_processes(key: str | None) -> GPUProcessesResponse:
    """Processes on every GPU (``key`` None) or on the GPU ``key`` names, with their host
    details; raises NotFound (404) for a GPU that does not exist."""
    manager = get_manager()
    try:
        gpu = None if key is None else gpu_key(key)
        index = manager.index_of_uuid(gpu) if isinstance(gpu, str) else gpu
        return host.processes(manager, index, command_line=conf.get("PROCESS_COMMAND_LINE"))
    except GPUNotFoundError as exc:
        raise NotFound(str(exc)) from exc


@document("device")
class DeviceDetailView(GPUMonitorAPIView):
    """One GPU by index or by UUID, shaped like an item of ``devices``; 404 when none.

    ``devices/0`` or ``devices/GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772`` (UUIDs are
    stable across reboots, indexes are not):

    {"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_memory_mb": 81559, ...}
    """

    def get(self, request: Request, index: str) -> Response:
        return Response(GPUDeviceSerializer(find_device(index)).data)


class ProcessesAPIView(GPUMonitorAPIView):
    """Base of the process views: they name users and commands, so a client needs both
    ``PERMISSION_CLASSES`` and ``PROCESS_PERMISSION_CLASSES`` (default: admins only)."""

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), *_instances("PROCESS_PERMISSION_CLASSES")]


@document("processes")
class ProcessListView(ProcessesAPIView):
    """Processes on every GPU: pid, user, command, GPU memory. Always 200.

    Admins only by default (``PROCESS_PERMISSION_CLASSES``); command lines are hidden
    unless ``PROCESS_COMMAND_LINE`` is True. Without NVML: an empty list.
    """

    def get(self, request: Request) -> Response:
        return Response(GPUProcessesResponseSerializer(find_processes(None)).data)


@document("device_processes")
class DeviceProcessListView(ProcessesAPIView):
    """Processes on one GPU (by index or UUID), shaped like ``processes``; 404 when none."""

    def get(self, request: Request, index: str) -> Response:
        return Response(GPUProcessesResponseSerializer(find_processes(index)).data)


@document("driver")
class DriverView(GPUMonitorAPIView):
    """Driver, CUDA and NVML versions; 503 when NVML is not available.

    {"driver_version": "580.159.04", "cuda_driver_version": "13.0",
     "nvml_version": "13.580.159.04"}
    """

    def get(self, request: Request) -> Response:
        try:
            info = get_manager().get_driver_info()
        except NVMLUnavailableError as exc:
            raise ServiceUnavailable(f"NVML is not available: {exc}") from exc
        return Response(DriverInfoSerializer(info).data)


@document("status")
class StatusView(GPUMonitorAPIView):
    """Cheap health summary for load balancers and probes. Always 200.

    {"cuda_available": true, "device_count": 1, "error_message": null}
    """

    def get(self, request: Request) -> Response:
        return Response(GPUStatusSerializer(get_manager().get_status()).data)


class PlainTextRenderer(BaseRenderer):
    """``text/plain`` for clients that ask only for it (Prometheus does): errors as text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, dict) and "detail" in data:
            data = data["detail"]
        return f"{data}\n".encode()


class NotImplementedResponse(APIException):
    """501: an optional feature whose package is not installed."""

    status_code = 501
    default_code = "not_implemented"


@document("metrics")
class MetricsView(GPUMonitorAPIView):
    """Prometheus text exposition of every GPU, read from NVML at scrape time.

    Needs ``pip install gpu-monitor[prometheus]``; without it: 501.

        gpu_monitor_up 1.0
        gpu_monitor_memory_used_bytes{gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-..."} 0.0
    """

    renderer_classes = (JSONRenderer, BrowsableAPIRenderer, PlainTextRenderer)

    def get(self, request: Request) -> HttpResponse:
        try:
            metrics = import_module("gpu_monitor.metrics")  # needs prometheus_client
        except ImportError as exc:
            raise NotImplementedResponse(
                "Prometheus metrics need the prometheus_client package: "
                "pip install gpu-monitor[prometheus]"
            ) from exc
        return HttpResponse(metrics.render(get_manager()), content_type=metrics.CONTENT_TYPE)


HISTORY_CHARTS = (("utilization", "Utilisation %"), ("memory", "Memory %"), ("temperature", "°C"))
HISTORY_WINDOWS = (("-1h", "1 h"), ("-6h", "6 h"), ("-24h", "24 h"), ("-7d", "7 d"))
DEFAULT_INTERVAL_S = 5
MAX_INTERVAL_S = 3600


def _card(device: GPUDevice, processes: list[GPUProcess] | None = None) -> dict[str, Any]:
    """What a dashboard card shows; dashboard.js formats refreshed data the same way.

    ``processes``: every GPU's processes when the viewer may see them, else None.
    """
    memory_percent = device.memory_used_percent
    power = "Power N/A"
    if device.power_draw_w is not None:
        power = f"{device.power_draw_w:.0f} W"
        if device.power_limit_w:
            power += f" / {device.power_limit_w:.0f} W"
    return {
        "device": device,
        "memory": "N/A"
        if memory_percent is None
        else f"{device.used_memory_mb} / {device.total_memory_mb} MiB ({memory_percent:.0f}%)",
        "memory_percent": f"{memory_percent or 0:.1f}",
        "utilization": "N/A"
        if device.utilization_percent is None
        else f"{device.utilization_percent}%",
        "utilization_percent": device.utilization_percent or 0,
        "temperature": "N/A" if device.temperature_c is None else f"{device.temperature_c} °C",
        "temperature_percent": min(100, max(0, device.temperature_c or 0)),
        "power": power,
        "processes": None
        if processes is None
        else [_process_line(p, device) for p in processes if p.gpu_index == device.index],
    }


def _process_line(process: GPUProcess, device: GPUDevice) -> dict[str, Any]:
    """A process in a card: who, what, and its GPU memory as a share of the card's."""
    used = process.used_memory_mb
    share = 100 * used / device.total_memory_mb if used and device.total_memory_mb else 0
    return {
        "pid": process.pid,
        "user": process.username or "?",
        "name": process.name or "?",
        "memory": "N/A" if used is None else f"{used} MiB",
        "memory_percent": f"{min(100.0, share):.1f}",
    }


def _interval(text: str | None) -> int:
    """The refresh interval from ``?interval=`` in seconds, 1 to 3600."""
    seconds = whole_number(text or "")
    if seconds is None:
        return DEFAULT_INTERVAL_S
    return min(MAX_INTERVAL_S, max(1, seconds))


class DashboardRenderer(TemplateHTMLRenderer):
    """The dashboard page; errors as a short page of their own with the status and detail
    (a browser asked for a page). A client that asks for JSON gets DRF's JSON errors."""

    exception_template_names = ("gpu_monitor/error.html",)


class DashboardView(GPUMonitorAPIView):
    """An HTML page with one card per GPU, refreshed in place from the JSON API.

    ``?interval=SECONDS`` sets the refresh period (default 5, 1 to 3600). Same
    permission, authentication and throttle settings as the API.
    """

    renderer_classes = (DashboardRenderer, JSONRenderer)
    template_name = "gpu_monitor/dashboard.html"
    schema = None  # an HTML page, not an operation of the JSON API

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        """The allowed methods (``Allow`` header) and no body: never a page without data."""
        return HttpResponse(content_type="text/plain")

    def get(self, request: Request) -> Response:
        manager = get_manager()
        status, devices = manager.get_status_and_devices()
        try:
            driver = manager.get_driver_info()
        except NVMLUnavailableError:
            driver = None
        namespace = request.resolver_match.namespace if request.resolver_match else ""
        prefix = f"{namespace}:" if namespace else ""
        config: dict[str, Any] = {
            "devices": reverse(f"{prefix}devices"),
            "status": reverse(f"{prefix}status"),
            "driver": reverse(f"{prefix}driver"),
            "interval": _interval(request.query_params.get("interval")),
        }
        if apps.is_installed("gpu_monitor.history"):
            config["history"] = reverse(f"{prefix}history")
            config["events"] = reverse(f"{prefix}events")
        processes = None
        if self._may_see_processes(request):
            processes = find_processes(None).processes
            config["processes"] = reverse(f"{prefix}processes")
        return Response(
            {
                "cards": [_card(device, processes) for device in devices],
                "status": status,
                "driver": driver,
                "show_processes": processes is not None,
                "history_charts": HISTORY_CHARTS,
                "history_windows": HISTORY_WINDOWS,
                "config": config,
            }
        )

    def _may_see_processes(self, request: Request) -> bool:
        """Whether the viewer passes PROCESS_PERMISSION_CLASSES (the page itself needed
        PERMISSION_CLASSES already)."""
        return all(
            permission.has_permission(request, self)
            for permission in _instances("PROCESS_PERMISSION_CLASSES")
        )


class NotFoundView(GPUMonitorAPIView):
    """Any other path under the app: a JSON 404 whatever the method."""

    schema = None  # not an API operation: keep it out of the OpenAPI schema

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound(
            "Not found. Endpoints: devices, devices/<index> or devices/<uuid>, "
            "devices/<index or uuid>/processes, processes, driver, status, metrics, dashboard, "
            "history, events."
        )


class HistoryNotInstalledView(GPUMonitorAPIView):
    """history and events without the sub-app: a JSON 404 that says how to add it."""

    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound(
            "GPU history is not installed: add 'gpu_monitor.history' to INSTALLED_APPS, run "
            "manage.py migrate, and run manage.py gpu_record."
        )
