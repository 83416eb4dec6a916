"""OpenAPI descriptions of the fleet operations (with drf-spectacular installed)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from gpu_monitor.fleet.hosts import DOWN_AFTER_INTERVALS, STALE_AFTER_INTERVALS
from gpu_monitor.fleet.limits import SORTS, HostPagination
from gpu_monitor.fleet.types import STATES
from gpu_monitor.schema import GPU_BURN, H100
from gpu_monitor.stored import MAX_HOST_LENGTH, page_queries, query

V = TypeVar("V")

EXAMPLE_HOST: dict[str, Any] = {
    "host": "gpu-node-1",
    "last_seen": "2026-11-28T08:00:00Z",
    "age_seconds": 4,
    "state": "up",
    "interval_seconds": 10,
    "gpu_count": 8,
    "utilization_percent": 87.5,
    "used_memory_mb": 524288,
    "total_memory_mb": 652472,
    "max_temperature_c": 71,
    "problems": [
        {"gpu_index": 3, "kind": "uncorrected_ecc", "message": "2 uncorrected ECC error(s)"}
    ],
    "xid_24h": 1,
}


def path_host() -> Any:
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(
        "host",
        {"type": "string", "maxLength": MAX_HOST_LENGTH, "pattern": "^[^/\\u0000]+$"},
        OpenApiParameter.PATH,
        description=f"a recorded host name (gpu_record --host), at most {MAX_HOST_LENGTH} "
        "characters (400 otherwise); 404 for a host that never recorded",
    )


def describe_stored_lists() -> None:
    """The stored devices and processes, described as the items the node's API gives."""
    from drf_spectacular.utils import extend_schema_field

    from gpu_monitor.fleet.serializers import StoredDevicesField, StoredProcessesField
    from gpu_monitor.serializers import GPUDeviceSerializer, GPUProcessSerializer

    extend_schema_field(GPUDeviceSerializer(many=True))(StoredDevicesField)
    extend_schema_field(GPUProcessSerializer(many=True))(StoredProcessesField)


def hosts_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.fleet.serializers import HostSummarySerializer
    from gpu_monitor.schema import common_responses, error_response

    return {
        "summary": "Every recorded host and its state",
        "description": "Each host that gpu_record recorded (gpu_monitor.fleet), sorted by "
        "host (or ?sort=): up, stale (no tick for more than "
        f"{STALE_AFTER_INTERVALS} intervals) or down "
        "(none for GPU_MONITOR['FLEET_DOWN_AFTER'] seconds and "
        f"{DOWN_AFTER_INTERVALS} intervals, whichever is longer), "
        "its GPUs summed up at its last tick, "
        "its hardware problems (one per GPU and condition) and its XID errors of the last "
        "24 hours. Paginated (?page=, ?page_size= up to 1000, default 500).",
        "parameters": [
            OpenApiParameter(
                "state",
                {"type": "string", "enum": [*STATES, ""]},
                OpenApiParameter.QUERY,
                description="only hosts in this state (400 for another value)",
            ),
            OpenApiParameter(
                "problem",
                {"type": "string", "enum": ["1", "0", ""]},
                OpenApiParameter.QUERY,
                description="1: only hosts with a hardware problem; 0: only those without",
            ),
            query(
                "q",
                f"only hosts whose name contains this, in any case; at most "
                f"{MAX_HOST_LENGTH} characters",
                maxLength=MAX_HOST_LENGTH,
                pattern="^[^\\u0000]*$",
            ),
            OpenApiParameter(
                "sort",
                {"type": "string", "enum": [*SORTS, ""], "default": "host"},
                OpenApiParameter.QUERY,
                description="the order of the hosts over every page (400 for another "
                "value): " + "; ".join(f"{name}: {text}" for name, text in SORTS.items()),
            ),
            *page_queries("hosts", HostPagination),
            OpenApiParameter("format", exclude=True),
        ],
        "responses": {
            200: OpenApiResponse(
                HostSummarySerializer(many=True),
                description="A page of hosts",
                examples=[OpenApiExample("A host with a problem", value=EXAMPLE_HOST)],
            ),
            400: error_response(
                "Bad parameter (a page past the last too)",
                "state: one of up, stale, down, not 'x'",
            ),
            **common_responses(),
        },
    }


def host_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.fleet.serializers import HostDetailSerializer
    from gpu_monitor.schema import common_responses, error_response

    describe_stored_lists()
    example = {
        "host": "gpu-node-1",
        "recorded_at": "2026-11-28T08:00:00Z",
        "age_seconds": 4,
        "state": "up",
        "interval_seconds": 10,
        "driver": {
            "driver_version": "580.159.04",
            "cuda_driver_version": "13.0",
            "nvml_version": "13.580.159.04",
        },
        "devices": [H100],
        "count": 1,
    }
    return {
        "summary": "One host's last recorded state",
        "description": "The devices as the host's own GET api/gpu/devices gave them at its "
        "last tick, its driver (null without NVML), and its state.",
        "parameters": [path_host(), OpenApiParameter("format", exclude=True)],
        "responses": {
            200: OpenApiResponse(
                HostDetailSerializer,
                description="The host's last state",
                examples=[OpenApiExample("One H100", value=example)],
            ),
            400: error_response(
                "Host name too long", "host: longer than 255 characters: 'aaaa...'..."
            ),
            404: error_response(
                "No such host", "No host 'gpu-node-9' has recorded (gpu_record --host)."
            ),
            **common_responses(),
        },
    }


def host_processes_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.fleet.serializers import HostProcessesSerializer
    from gpu_monitor.schema import common_responses, error_response

    describe_stored_lists()
    return {
        "summary": "The processes a host recorded at its last tick",
        "description": "Recorded by gpu_record --processes. Admins only by default "
        "(PROCESS_PERMISSION_CLASSES); command lines only when this site's "
        "PROCESS_COMMAND_LINE is True.",
        "parameters": [path_host(), OpenApiParameter("format", exclude=True)],
        "responses": {
            200: OpenApiResponse(
                HostProcessesSerializer,
                description="The recorded processes",
                examples=[
                    OpenApiExample(
                        "gpu_burn on GPU 0",
                        value={
                            "host": "gpu-node-1",
                            "recorded_at": "2026-11-28T08:00:00Z",
                            "processes": [GPU_BURN],
                            "count": 1,
                            "gpu_errors": {},
                        },
                    )
                ],
            ),
            400: error_response(
                "Host name too long", "host: longer than 255 characters: 'aaaa...'..."
            ),
            404: error_response(
                "No such host, or no processes recorded",
                "Host 'gpu-node-1' records no processes: run gpu_record --processes there.",
            ),
            **common_responses(),
        },
    }


def document_post(name: str, docs: Callable[[], dict[str, Any]]) -> Callable[[V], V]:
    """``gpu_monitor.schema.document`` for a view that answers POST."""
    try:
        from drf_spectacular.utils import extend_schema, extend_schema_view
    except ImportError:
        return lambda view: view
    return cast(
        "Callable[[V], V]",
        extend_schema_view(post=extend_schema(tags=["gpu"], operation_id=f"gpu_{name}", **docs())),
    )


EXAMPLE_BATCH: dict[str, Any] = {
    "version": 1,
    "host": "gpu-node-1",
    "interval": 10,
    "processes_recorded": False,
    "dropped": 0,
    "ticks": [
        {
            "epoch": 1795856000,
            "nvml_error": None,
            "devices": [H100],
            "lost": [],
            "driver": {
                "driver_version": "580.159.04",
                "cuda_driver_version": "13.0",
                "nvml_version": "13.580.159.04",
            },
            "processes": {"processes": [], "count": 0, "gpu_errors": {}},
            "xids": [],
        }
    ],
}


@functools.cache  # a subclass registers itself when defined: once
def describe_host_token() -> None:
    """The host token as the schema's ``hostToken`` security scheme (HTTP bearer)."""
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class HostTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        target_class = "gpu_monitor.fleet.ingest.HostTokenAuthentication"
        name = "hostToken"

        def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
            return {"type": "http", "scheme": "bearer", "bearerFormat": "gpumon_..."}


def ingest_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.schema import MISCONFIGURED, error_response

    describe_host_token()

    written = {"host": "gpu-node-1", "written": 2, "duplicates": 0}
    return {
        "summary": "Write the ticks a node pushed (gpu_record --push)",
        "description": "A node's buffered ticks (version 1, docs/api.md), written in one "
        "transaction through the recorder's tick writers; a tick at or before the newest "
        "one the host has written is a duplicate, counted and not written again. "
        "Authorization: Bearer and the host's token (manage.py gpu_host_token create "
        "HOST): it writes that host only and opens no other endpoint. Content-Type "
        "application/json, Content-Encoding gzip or none, at most "
        "GPU_MONITOR['INGEST_MAX_BYTES'] bytes compressed and decompressed; "
        "GPU_MONITOR['INGEST_RATE'] requests per host.",
        "request": {"application/json": {"type": "object"}},
        "examples": [OpenApiExample("One tick of one GPU", value=EXAMPLE_BATCH, request_only=True)],
        "parameters": [OpenApiParameter("format", exclude=True)],
        "responses": {
            200: OpenApiResponse(
                {
                    "type": "object",
                    "properties": {
                        "host": {"type": "string"},
                        "written": {"type": "integer"},
                        "duplicates": {"type": "integer"},
                    },
                    "required": ["host", "written", "duplicates"],
                },
                description="The ticks written and the duplicates",
                examples=[OpenApiExample("Two ticks written", value=written)],
            ),
            400: error_response(
                "Not JSON, not gzip, or a field that is wrong",
                'ticks[3].devices[0].temperature_c: an integer or null, not "hot"',
            ),
            401: error_response("No token, or an unknown or revoked one", "Unknown host token."),
            403: error_response(
                "The body's host is not the token's",
                "This token writes host 'gpu-node-1' only, not 'gpu-node-2'.",
            ),
            405: error_response("Not a POST", 'Method "GET" not allowed.'),
            411: error_response(
                "No Content-Length", "A body needs a Content-Length (a number of bytes)."
            ),
            413: error_response(
                "The body is too large",
                "The body is over the limit of 8388608 bytes (INGEST_MAX_BYTES).",
            ),
            415: error_response(
                "Not JSON, or an encoding other than gzip",
                "The body must be JSON (Content-Type: application/json).",
            ),
            429: error_response(
                "Throttled (Retry-After)", "Request was throttled. Expected available in 3 seconds."
            ),
            503: error_response(
                "The database cannot write, or GPU_MONITOR is misconfigured (Retry-After)",
                MISCONFIGURED,
            ),
        },
    }
