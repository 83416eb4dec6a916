"""OpenAPI descriptions of the views, applied only when drf-spectacular is installed.

``pip install gpu-monitor[openapi]`` brings drf-spectacular; without it, ``document``
leaves the views untouched and the app works the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from gpu_monitor.params import GPU_PATTERN
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    ErrorSerializer,
    GPUDeviceSerializer,
    GPUDevicesResponseSerializer,
    GPUProcessesResponseSerializer,
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

# gpu_burn on the H100 of the load capture (nvidia-smi: 15690 MiB; pmon: 99% SM, 10% mem).
GPU_BURN: dict[str, Any] = {
    "gpu_index": 0,
    "gpu_uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "pid": 11345,
    "type": "compute",
    "used_memory_mb": 15690,
    "sm_utilization_percent": 99,
    "memory_utilization_percent": 10,
    "username": "root",
    "name": "gpu_burn",
    "command_line": None,
    "host_memory_mb": 812,
    "started_at": "2026-07-14T08:11:52Z",
    "gpu_instance_id": None,
    "compute_instance_id": None,
    "mig_uuid": None,
    "field_errors": {"command_line": "hidden: GPU_MONITOR['PROCESS_COMMAND_LINE'] is False"},
}
MEMHOG: dict[str, Any] = {
    **GPU_BURN,
    "pid": 11327,
    "used_memory_mb": 2566,
    "sm_utilization_percent": None,
    "memory_utilization_percent": None,
    "name": "memhog",
    "host_memory_mb": 95,
    "field_errors": {
        "sm_utilization_percent": "No utilization sample in the last 5 s "
        "(NVML samples only processes that used the GPU)",
        "memory_utilization_percent": "No utilization sample in the last 5 s "
        "(NVML samples only processes that used the GPU)",
        "command_line": "hidden: GPU_MONITOR['PROCESS_COMMAND_LINE'] is False",
    },
}
CONTAINER: dict[str, Any] = {
    **GPU_BURN,
    "username": None,
    "name": None,
    "host_memory_mb": None,
    "started_at": None,
    "field_errors": {
        name: "not visible from this PID namespace; run with --pid=host"
        for name in ("username", "name", "command_line", "host_memory_mb", "started_at")
    },
}

METRICS_EXAMPLE = """# HELP gpu_monitor_up 1 when NVML is available in this process, else 0
# TYPE gpu_monitor_up gauge
gpu_monitor_up 1.0
# HELP gpu_monitor_memory_used_bytes Used memory (nvidia-smi memory.used)
# TYPE gpu_monitor_memory_used_bytes gauge
gpu_monitor_memory_used_bytes{gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-3a34af56-..."} 0.0
"""


def error_response(description: str, detail: str) -> Any:
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[OpenApiExample(description, value={"detail": detail})],
    )


MISCONFIGURED = (
    "GPU_MONITOR is misconfigured: GPU_MONITOR must be a dict, not list; run manage.py check"
)


def common_responses() -> dict[int, Any]:
    return {
        401: error_response("Not authenticated", "Authentication credentials were not provided."),
        403: error_response("Forbidden", "You do not have permission to perform this action."),
        405: error_response("Method not allowed", 'Method "POST" not allowed.'),
        429: error_response(
            "Throttled", "Request was throttled. Expected available in 42 seconds."
        ),
        503: error_response("GPU_MONITOR misconfigured (fails closed)", MISCONFIGURED),
    }


def _gpu_parameter() -> Any:
    return OpenApiParameter(
        "gpu",
        str,
        OpenApiParameter.PATH,
        description="GPU index (0, 1, ...) or UUID (GPU-..., stable across reboots; or the "
        "MIG-... UUID of one of its MIG devices).",
        pattern=GPU_PATTERN,
    )


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
                **common_responses(),
            },
        },
        "device": {
            "summary": "One GPU by index or UUID",
            "parameters": [_gpu_parameter()],
            "responses": {
                200: OpenApiResponse(
                    GPUDeviceSerializer,
                    description="The GPU",
                    examples=[OpenApiExample("An H100", value=H100)],
                ),
                404: error_response("No such GPU", "No GPU with index 7 (1 GPU(s) present)."),
                **common_responses(),
            },
        },
        "processes": {
            "summary": "Processes on every GPU",
            "description": "Who uses each GPU: pid, user, process name, GPU memory (MiB, as "
            "nvidia-smi --query-compute-apps) and utilisation (as nvidia-smi pmon). Sorted "
            "by GPU, then GPU memory, largest first. Admins only by default "
            "(PROCESS_PERMISSION_CLASSES); command lines hidden unless PROCESS_COMMAND_LINE. "
            "Always 200: an empty list without NVML; gpu_errors says why a GPU's "
            "processes could not be listed.",
            "responses": {
                200: OpenApiResponse(
                    GPUProcessesResponseSerializer,
                    description="Every GPU's processes",
                    examples=[
                        OpenApiExample(
                            "An H100 under load",
                            value={
                                "processes": [GPU_BURN, MEMHOG],
                                "count": 2,
                                "gpu_errors": {},
                            },
                        ),
                        OpenApiExample(
                            "In a container without --pid=host",
                            value={"processes": [CONTAINER], "count": 1, "gpu_errors": {}},
                        ),
                        OpenApiExample(
                            "One GPU lost",
                            value={
                                "processes": [GPU_BURN],
                                "count": 1,
                                "gpu_errors": {"1": "GPU is lost"},
                            },
                        ),
                        OpenApiExample(
                            "No GPU or driver",
                            value={"processes": [], "count": 0, "gpu_errors": {}},
                        ),
                    ],
                ),
                **common_responses(),
            },
        },
        "device_processes": {
            "summary": "Processes on one GPU, by index or UUID",
            "parameters": [_gpu_parameter()],
            "responses": {
                200: OpenApiResponse(
                    GPUProcessesResponseSerializer,
                    description="The GPU's processes",
                    examples=[
                        OpenApiExample(
                            "An H100 under load",
                            value={"processes": [GPU_BURN], "count": 1, "gpu_errors": {}},
                        )
                    ],
                ),
                404: error_response("No such GPU", "No GPU with index 7 (1 GPU(s) present)."),
                **common_responses(),
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
                **common_responses(),
                503: OpenApiResponse(
                    ErrorSerializer,
                    description="NVML not available, or GPU_MONITOR misconfigured",
                    examples=[
                        OpenApiExample(
                            "NVML not available",
                            value={
                                "detail": "NVML is not available: NVML Shared Library Not Found"
                            },
                        ),
                        OpenApiExample(
                            "GPU_MONITOR misconfigured", value={"detail": MISCONFIGURED}
                        ),
                    ],
                ),
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
                **common_responses(),
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
                501: error_response(
                    "prometheus_client not installed",
                    "Prometheus metrics need the prometheus_client package: "
                    "pip install gpu-monitor[prometheus]",
                ),
                **common_responses(),
            },
        },
    }


def document(name: str, docs: Callable[[], dict[str, Any]] | None = None) -> Callable[[V], V]:
    """Class decorator adding the OpenAPI description ``name`` (of this module, or made by
    ``docs``, for a sub-app) when drf-spectacular is there."""
    if extend_schema is None:
        return lambda view: view
    spec = docs() if docs is not None else _docs()[name]
    return cast(
        "Callable[[V], V]",
        extend_schema_view(get=extend_schema(tags=["gpu"], operation_id=f"gpu_{name}", **spec)),
    )
