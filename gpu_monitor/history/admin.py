"""Read-only admin pages for the recorded samples and events."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gpu_monitor.history.models import Event, Sample


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """History is written by gpu_record only: the admin looks, never edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    """Samples by host, GPU and time."""

    list_display = (
        "timestamp",
        "host",
        "gpu_index",
        "name",
        "utilization_percent",
        "used_memory_mb",
        "temperature_c",
        "power_draw_w",
    )
    list_filter = ("host", "gpu_index")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)  # each filter has an index on (its column, timestamp)
    show_full_result_count = False  # millions of rows: no COUNT(*) on every page


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Events by host, GPU, kind and time."""

    list_display = ("timestamp", "host", "gpu_index", "kind", "xid", "message")
    list_filter = ("kind", "host", "gpu_index")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)  # each filter has an index on (its column, timestamp)
