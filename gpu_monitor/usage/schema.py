"""OpenAPI descriptions of the usage operations (with drf-spectacular installed)."""

from __future__ import annotations

from typing import Any

from gpu_monitor.stored import MAX_HOST_LENGTH, query, time_query
from gpu_monitor.usage.limits import MAX_IDLE_MINUTES
from gpu_monitor.usage.types import BY

ALICE: dict[str, Any] = {
    "user": "alice",
    "host": None,
    "gpu_uuid": None,
    "gpu_index": None,
    "gpu_hours": 1.0,
    "idle_gpu_hours": 0.333,
    "active_gpu_hours": 0.667,
    "shared_gpu_hours": 0.167,
    "utilization_percent": 60.0,
    "max_memory_mb": 2000,
    "memory_gib_hours": 1.465,
    "first_seen": "2026-11-28T08:00:10Z",
    "last_seen": "2026-11-28T09:00:00Z",
}
EXAMPLE_USAGE: dict[str, Any] = {
    "since": "2026-11-21T09:00:00Z",
    "until": "2026-11-28T09:00:00Z",
    "by": "user",
    "rows": [ALICE],
    "total": {**ALICE, "user": None},
}
EXAMPLE_IDLE: dict[str, Any] = {
    "minutes": 60,
    "gpus": [
        {
            "host": "gpu-node-1",
            "gpu_index": 3,
            "gpu_uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
            "user": "alice",
            "idle_since": "2026-11-28T06:40:00Z",
            "memory_mb": 19818,
            "notified": {"count": 2, "last": "2026-11-28T08:45:00Z"},
        }
    ],
}
PERMISSIONS = (
    "Names people: admins only by default (PROCESS_PERMISSION_CLASSES); with "
    "GPU_MONITOR['USAGE_SELF_SERVICE'] a signed-in user refused by them sees their own "
    "usage only (403 for ?user= naming another)."
)


def unknown_host() -> Any:
    from gpu_monitor.schema import error_response

    return error_response(
        "No such recorded host",
        "No host 'gpu-nod-1' has recorded GPU usage (gpu_record --host).",
    )


def name_queries() -> list[Any]:
    from gpu_monitor.usage.models import MAX_USER_LENGTH

    return [
        query(
            "host",
            f"only this recorded host (gpu_record --host); at most {MAX_HOST_LENGTH} "
            "characters; 404 naming a host that never recorded usage",
            maxLength=MAX_HOST_LENGTH,
            pattern="^[^\\u0000]*$",
        ),
        query(
            "user",
            f"only this user, as recorded (the Unix user name); at most {MAX_USER_LENGTH} "
            "characters",
            maxLength=MAX_USER_LENGTH,
            pattern="^[^\\u0000]*$",
        ),
    ]


def usage_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.schema import common_responses, error_response
    from gpu_monitor.usage.serializers import UsageReportSerializer

    return {
        "summary": "GPU-hours per user, host or GPU",
        "description": "Recorded by gpu_record with gpu_monitor.usage installed, in "
        "five-minute periods: the whole periods holding any moment from since to until, "
        "which the body's since and until give (since rounded down, until rounded up to "
        "five minutes). Rows sorted by GPU-hours, most first; a GPU shared by two users counts as "
        "held by both (shared_gpu_hours says how long). idle: the GPU's utilisation at or "
        f"below USAGE_IDLE_PERCENT. {PERMISSIONS}",
        "parameters": [
            time_query("since", "default: 7 days before until; must be before until (400)"),
            time_query("until", "default: now"),
            query(
                "by",
                "group the rows by user (default), host, GPU (host and UUID) or host and user",
                enum=[*BY, ""],
            ),
            *name_queries(),
            OpenApiParameter("format", exclude=True),
        ],
        "responses": {
            200: OpenApiResponse(
                UsageReportSerializer,
                description="The usage in the window",
                examples=[OpenApiExample("One user, one hour", value=EXAMPLE_USAGE)],
            ),
            400: error_response(
                "Bad parameter", "by: one of user, host, gpu, host,user, not 'team'"
            ),
            404: unknown_host(),
            **common_responses(),
        },
    }


def idle_docs() -> dict[str, Any]:
    from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

    from gpu_monitor.schema import common_responses, error_response
    from gpu_monitor.usage.serializers import IdleGPUsSerializer

    return {
        "summary": "The GPUs held idle now",
        "description": "The GPUs a user holds now (a process on it at the host's last "
        "ticks) whose every sample of the last minutes was idle (utilisation at or below "
        f"USAGE_IDLE_PERCENT), by host, GPU and user. notified: how often gpu_notify told "
        "the holder about this idle run (the first notice and each reminder, sent; count 0 "
        "and last null when never), null when gpu_monitor.notify is not installed. "
        f"{PERMISSIONS}",
        "parameters": [
            OpenApiParameter(
                "minutes",
                {"type": "integer", "minimum": 1, "maximum": MAX_IDLE_MINUTES},
                OpenApiParameter.QUERY,
                description="idle for at least this long (default: the USAGE_IDLE_MINUTES setting, "
                "60 unless set, as the idle_held events)",
            ),
            *name_queries(),
            OpenApiParameter("format", exclude=True),
        ],
        "responses": {
            200: OpenApiResponse(
                IdleGPUsSerializer,
                description="The idle-held GPUs",
                examples=[OpenApiExample("One GPU held idle", value=EXAMPLE_IDLE)],
            ),
            400: error_response("Bad parameter", "minutes: a whole number from 1 to 10080"),
            404: unknown_host(),
            **common_responses(),
        },
    }
