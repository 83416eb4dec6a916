"""GET-only API views: ask the manager, serialize, respond."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gpu_monitor.manager import GPUNotFoundError, NVMLUnavailableError, get_manager
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDeviceSerializer,
    GPUDevicesResponseSerializer,
    GPUStatusSerializer,
)
from gpu_monitor.types import GPUDevicesResponse

UUID_PATTERN = re.compile(r"(GPU|MIG)-[0-9A-Za-z-]{1,80}")


class ServiceUnavailable(APIException):
    """503: the service needed to answer (NVML) is not available."""

    status_code = 503
    default_detail = "Service temporarily unavailable."
    default_code = "service_unavailable"


class DeviceListView(APIView):
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


class DeviceDetailView(APIView):
    """One GPU by index or by UUID, shaped like an item of ``devices``; 404 when none.

    ``devices/0`` or ``devices/GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772`` (UUIDs are
    stable across reboots, indexes are not):

    {"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_memory_mb": 81559, ...}
    """

    def get(self, request: Request, index: str) -> Response:
        manager = get_manager()
        try:
            if index.isascii() and index.isdigit():
                device = manager.get_device(int(index))
            elif UUID_PATTERN.fullmatch(index):
                device = manager.get_device_by_uuid(index)
            else:
                raise GPUNotFoundError(
                    f"No GPU {index!r}: use an index (0, 1, ...) or a UUID (GPU-...)."
                )
        except GPUNotFoundError as exc:
            raise NotFound(str(exc)) from exc
        return Response(GPUDeviceSerializer(device).data)


class DriverView(APIView):
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


class StatusView(APIView):
    """Cheap health summary for load balancers and probes. Always 200.

    {"cuda_available": true, "device_count": 1, "error_message": null}
    """

    def get(self, request: Request) -> Response:
        return Response(GPUStatusSerializer(get_manager().get_status()).data)


class NotFoundView(APIView):
    """Any other path under the app: a JSON 404 whatever the method."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise NotFound("Not found. Endpoints: devices, devices/<index>, driver, status.")
