"""GET-only API views: ask the manager, serialize, respond."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RegexPattern
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor import host
from gpu_monitor.api import (
    GPUMonitorAPIView,
    NotImplementedResponse,
    ProcessesAPIView,
    ServiceUnavailable,
)
from gpu_monitor.conf import conf
from gpu_monitor.manager import GPUNotFoundError, NVMLUnavailableError, get_manager
from gpu_monitor.params import gpu_key
from gpu_monitor.schema import document
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDeviceSerializer,
    GPUDevicesResponseSerializer,
    GPUProcessesResponseSerializer,
    GPUStatusSerializer,
)
from gpu_monitor.types import GPUDevice, GPUDevicesResponse, GPUProcessesResponse

if TYPE_CHECKING:
    pass


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

    def get(self, request: Request, gpu: str) -> Response:
        return Response(GPUDeviceSerializer(find_device(gpu)).data)


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

    def get(self, request: Request, gpu: str) -> Response:
        return Response(GPUProcessesResponseSerializer(find_processes(gpu)).data)


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


@document("metrics")
class MetricsView(GPUMonitorAPIView):
    """Prometheus text exposition of every GPU, read from NVML at scrape time, and the
    series installed sub-apps add (the fleet's with ``METRICS_FLEET``).

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


# In a URL pattern: a named group (``(?P<gpu>[^/]+)`` reads ``<gpu>``), a group of
# alternatives (``(history|events)``, one endpoint each), a path converter (``<str:x>``).
NAMED_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")
ALTERNATIVES = re.compile(r"\(((?:[\w-]+\|)+[\w-]+)\)")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def endpoint_paths(patterns: Sequence[URLPattern | URLResolver], prefix: str = "") -> list[str]:
    """The paths of ``patterns`` as a reader writes them (``devices/<gpu>/processes``),
    in order, each once; a pattern that matches no path of its own (the catch-all) has
    none."""
    found: list[str] = []
    for pattern in patterns:
        text = str(pattern.pattern)
        if isinstance(pattern.pattern, RegexPattern):
            text = NAMED_GROUP.sub(r"<\1>", text)
            text = re.sub(r"^\^|/?\??(?:\$|\\Z)$", "", text).replace("\\", "")
        else:
            text = CONVERTER.sub(r"<\1>", text)
        text = prefix + text
        if isinstance(pattern, URLResolver):
            found += endpoint_paths(pattern.url_patterns, text)
            continue
        choices = ALTERNATIVES.search(text)
        if choices:
            found += [
                text[: choices.start()] + choice + text[choices.end() :]
                for choice in choices.group(1).split("|")
            ]
        else:
            found.append(text)
    return [path for path in dict.fromkeys(p.rstrip("/") for p in found) if path]


class NotFoundView(GPUMonitorAPIView):
    """Any other path under the app: a JSON 404 whatever the method, that lists the
    app's endpoints (read from its URL patterns: the installed sub-apps' included).

    ``patterns``: the URL patterns to list, given by ``urls.py`` in ``as_view()``."""

    schema = None  # not an API operation: keep it out of the OpenAPI schema
    patterns: Sequence[URLPattern | URLResolver] = ()
    any_method = True
    name = "GPU monitor API"  # the browsable API's breadcrumb of the app's root

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound(
            f"Not found. Endpoints: {', '.join(endpoint_paths(self.patterns))} "
            "(<gpu>: an index or a UUID)."
        )


class NotInstalledView(GPUMonitorAPIView):
    """The paths of a shipped sub-app that is not installed: a JSON 404 whose ``detail``
    (given by ``urls.py`` in ``as_view()``, from the sub-app's ``plugins.NotInstalled``)
    says how to add it."""

    schema = None
    detail = ""
    any_method = True

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound(self.detail)
