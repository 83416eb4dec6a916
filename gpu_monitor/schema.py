"""OpenAPI descriptions of the views, applied only when drf-spectacular is installed.

``pip install gpu-monitor[openapi]`` brings drf-spectacular; without it, ``document``
leaves the views untouched and the app works the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from gpu_monitor.serializers import (
    DriverInfoSerializer,
    ErrorSerializer,
    GPUDeviceSerializer,
    GPUDevicesResponseSerializer,
    GPUStatusSerializer,
)

try:
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import (
        OpenApiExample,
        OpenApiParameter,
        OpenApiResponse,
        extend_schema_view,
    )
    from drf_spectacular.utils import extend_schema as _extend_schema

    extend_schema: Any = _extend_schema
except ImportError:  # the optional extra is not installed
    extend_schema = None

V = TypeVar("V")

H100: dict[str, Any] = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "total_memory_mb": 81559,
    "free_memory_mb": 81079,
    "used_memory_mb": 0,
    "utilization_percent": 0,
    "temperature_c": 34,
    "is_available": True,
    "error_message": None,
    "field_errors": {
        "fan_speed_percent": "Not Supported",
        "retired_pages_pending": "Not Supported",
    },
    "uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "pci_bus_id": "00000000:00:06.0",
    "power_draw_w": 71.07,
    "power_limit_w": 700.0,
    "fan_speed_percent": None,
    "memory_utilization_percent": 0,
    "performance_state": "P0",
    "sm_clock_mhz": 345,
    "memory_clock_mhz": 2619,
    "ecc_mode": "enabled",
    "ecc_errors_corrected_volatile": 0,
    "ecc_errors_uncorrected_volatile": 0,
    "ecc_errors_corrected_aggregate": 0,
    "ecc_errors_uncorrected_aggregate": 0,
    "remapped_rows_correctable": 0,
    "remapped_rows_uncorrectable": 0,
    "remapped_rows_pending": False,
    "remapped_rows_failure": False,
    "retired_pages_pending": None,
    "clocks_event_reasons": ["gpu_idle"],
    "persistence_mode": "enabled",
    "compute_mode": "default",
    "encoder_utilization_percent": 0,
    "decoder_utilization_percent": 0,
    "mig_mode": "disabled",
    "mig_devices": [],
}
LOST: dict[str, Any] = {
    **{key: None for key in H100},
    "index": 1,
    "name": "Unknown GPU",
    "is_available": False,
    "error_message": "GPU is lost",
    "field_errors": {},
    "mig_devices": [],
}

METRICS_EXAMPLE = """# HELP gpu_monitor_up 1 when NVML is available in this process, else 0
# TYPE gpu_monitor_up gauge
gpu_monitor_up 1.0
# HELP gpu_monitor_memory_used_bytes Used memory (nvidia-smi memory.used)
# TYPE gpu_monitor_memory_used_bytes gauge
gpu_monitor_memory_used_bytes{gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-3a34af56-..."} 0.0
"""


def _error(description: str, detail: str) -> Any:
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[OpenApiExample(description, value={"detail": detail})],
    )


def _common() -> dict[int, Any]:
    return {
        401: _error("Not authenticated", "Authentication credentials were not provided."),
        403: _error("Forbidden", "You do not have permission to perform this action."),
        405: _error("Method not allowed", 'Method "POST" not allowed.'),
        429: _error("Throttled", "Request was throttled. Expected available in 42 seconds."),
    }


@functools.cache  # built once, when the first view is decorated
def _docs() -> dict[str, dict[str, Any]]:
    return {
        "devices": {
            "summary": "List every GPU",
            "description": "Memory (MiB, as nvidia-smi), utilisation, temperature and more "
            "for each GPU. Always 200: an empty list when there is no GPU or no driver.",
            "responses": {
                200: OpenApiResponse(
                    GPUDevicesResponseSerializer,
                    description="Every GPU",
                    examples=[
                        OpenApiExample("One H100", value={"devices": [H100], "count": 1}),
                        OpenApiExample("One GPU lost", value={"devices": [H100, LOST], "count": 2}),
                        OpenApiExample("No GPU or driver", value={"devices": [], "count": 0}),
                    ],
                ),
                **_common(),
            },
        },
        "device": {
            "summary": "One GPU by index or UUID",
            "parameters": [
                OpenApiParameter(
                    "index",
                    str,
                    OpenApiParameter.PATH,
                    description="GPU index (0, 1, ...) or UUID (GPU-..., stable across reboots).",
                    pattern=r"^([0-9]+|(GPU|MIG)-[0-9A-Za-z-]{1,80})$",
                )
            ],
            "responses": {
                200: OpenApiResponse(
                    GPUDeviceSerializer,
                    description="The GPU",
                    examples=[OpenApiExample("An H100", value=H100)],
                ),
                404: _error("No such GPU", "No GPU with index 7 (1 GPU(s) present)."),
                **_common(),
            },
        },
        "driver": {
            "summary": "Driver, CUDA and NVML versions",
            "responses": {
                200: OpenApiResponse(
                    DriverInfoSerializer,
                    description="Versions as nvidia-smi shows them",
                    examples=[
                        OpenApiExample(
                            "Driver 580",
                            value={
                                "driver_version": "580.159.04",
                                "cuda_driver_version": "13.0",
                                "nvml_version": "13.580.159.04",
                            },
                        )
                    ],
                ),
                503: _error(
                    "NVML not available", "NVML is not available: NVML Shared Library Not Found"
                ),
                **_common(),
            },
        },
        "status": {
            "summary": "Health summary for probes",
            "responses": {
                200: OpenApiResponse(
                    GPUStatusSerializer,
                    description="Always 200",
                    examples=[
                        OpenApiExample(
                            "GPUs",
                            value={
                                "cuda_available": True,
                                "device_count": 1,
                                "error_message": None,
                            },
                        ),
                        OpenApiExample(
                            "No driver",
                            value={
                                "cuda_available": False,
                                "device_count": 0,
                                "error_message": "NVML Shared Library Not Found",
                            },
                        ),
                    ],
                ),
                **_common(),
            },
        },
        "metrics": {
            "summary": "Prometheus metrics",
            "description": "Prometheus text exposition (version 0.0.4) of every GPU, read "
            "at scrape time. Needs the optional extra gpu-monitor[prometheus].",
            # DRF's ?format= override is not part of this API.
            "parameters": [OpenApiParameter("format", exclude=True)],
            "responses": {
                (200, "text/plain"): OpenApiResponse(
                    OpenApiTypes.STR,
                    description="Prometheus text format",
                    examples=[OpenApiExample("One H100", value=METRICS_EXAMPLE)],
                ),
                501: _error(
                    "prometheus_client not installed",
                    "Prometheus metrics need the prometheus_client package: "
                    "pip install gpu-monitor[prometheus]",
                ),
                **_common(),
            },
        },
    }


def document(name: str) -> Callable[[V], V]:
    """Class decorator adding the OpenAPI description ``name`` when drf-spectacular is there."""
    if extend_schema is None:
        return lambda view: view
    return cast(
        "Callable[[V], V]",
        extend_schema_view(
            get=extend_schema(tags=["gpu"], operation_id=f"gpu_{name}", **_docs()[name])
        ),
    )
