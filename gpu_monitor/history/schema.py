"""OpenAPI descriptions of the history operations (with drf-spectacular installed)."""

from __future__ import annotations

from typing import Any

from gpu_monitor.history.limits import DEFAULT_POINTS, MAX_POINTS
from gpu_monitor.history.models import Event
from gpu_monitor.history.serializers import EventSerializer, HistorySerializer
from gpu_monitor.params import OPTIONAL_GPU_PATTERN
from gpu_monitor.stored import MAX_HOST_LENGTH, PagePagination, page_queries, query, time_query

# The query parameters as the views accept them: what a pattern, a bound or an enum
# cannot say (``since`` before ``until``) is in the description and answers a 400.

EXAMPLE_HISTORY: dict[str, Any] = {
    "host": "gpu-node-1",
    "since": "2026-11-28T08:00:00Z",
    "until": "2026-11-28T08:01:00Z",
    "step_seconds": 20,
    "series": [
        {
            "gpu_uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
            "gpu_index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "t": [1795852800, 1795852820, 1795852840],
            "utilization_percent": [97.5, None, 12.0],
            "utilization_percent_max": [100, None, 24],
            "used_memory_mb": [19818, None, 19818],
            "total_memory_mb": [81559, None, 81559],
            "temperature_c": [61, None, 55],
            "power_draw_w": [652.31, None, 180.4],
        }
    ],
}
EXAMPLE_EVENT: dict[str, Any] = {
    "host": "gpu-node-1",
    "gpu_uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "gpu_index": 0,
    "timestamp": "2026-11-28T03:02:10Z",
    "kind": "xid",
    "xid": 79,
    "message": "XID 79",
}


def gpu_query() -> Any:
    return query(
        "gpu",
        "GPU index or UUID, or the UUID of one of its MIG devices (found through NVML on "
        "this server); default: every GPU of the host. A GPU is known by its samples or "
        "its events: 404 for one the host never recorded",
        pattern=OPTIONAL_GPU_PATTERN,
    )


def host_query(default: str = "this server's") -> Any:
    return query(
        "host",
        f"recorded host name (default: {default}); 404 naming a host that never "
        "recorded a sample or an event",
        maxLength=MAX_HOST_LENGTH,
        pattern="^[^\\u0000]*$",
    )


def history_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.schema import common_responses, error_response

    return {
        "summary": "History of a host's GPUs, downsampled",
        "description": "Columnar series per GPU for charts: the average and maximum "
        "utilisation, maximum memory and temperature, average power of each bucket; a "
        "bucket without a sample is null. Needs the gpu_monitor.history sub-app and "
        "manage.py gpu_record.",
        "parameters": [
            gpu_query(),
            time_query("since", "default: until - 1 h; must be before until (400)"),
            time_query("until", "default: now"),
            OpenApiParameter(
                "points",
                {"type": "integer", "minimum": 1, "maximum": MAX_POINTS},
                OpenApiParameter.QUERY,
                description=f"buckets, 1 to {MAX_POINTS} (default {DEFAULT_POINTS})",
            ),
            host_query(),
            OpenApiParameter("format", exclude=True),
        ],
        "responses": {
            200: OpenApiResponse(
                HistorySerializer,
                description="One series per GPU",
                examples=[OpenApiExample("A minute of one H100", value=EXAMPLE_HISTORY)],
            ),
            400: error_response("Bad parameter", "points: a whole number from 1 to 2000, not '0'"),
            404: error_response(
                "No such recorded host or GPU",
                "No GPU with index 7 recorded on host 'gpu-node-1'.",
            ),
            **common_responses(),
        },
    }


def events_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.schema import common_responses, error_response

    return {
        "summary": "Recorded GPU events, newest first",
        "description": "XID errors, GPUs lost and recovered, NVML unavailable and back, "
        "samples dropped while the database was unreachable. Paginated (?page=, "
        "?page_size= up to 1000).",
        "parameters": [
            time_query("since", "default: every event"),
            OpenApiParameter(
                "kind",
                str,
                OpenApiParameter.QUERY,
                enum=[kind.value for kind in Event.Kind],
                description="only events of this kind",
            ),
            gpu_query(),
            host_query("every host's events; this server's with gpu"),
            *page_queries("events", PagePagination),
            OpenApiParameter("format", exclude=True),
        ],
        "responses": {
            200: OpenApiResponse(
                EventSerializer(many=True),
                description="A page of events",
                examples=[
                    # drf-spectacular wraps it in a page (count, next, previous).
                    OpenApiExample("An XID 79", value=EXAMPLE_EVENT)
                ],
            ),
            400: error_response(
                "Bad parameter (a page past the last too)",
                "page: '9' is past the last page (2)",
            ),
            404: error_response(
                "No such recorded host or GPU",
                "No host 'gpu-nod-1' has recorded GPU history (gpu_record --host).",
            ),
            **common_responses(),
        },
    }
