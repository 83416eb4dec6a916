"""Read-only admin pages for the recorded samples and events."""

from __future__ import annotations

from django.contrib import admin

from gpu_monitor.admin import ReadOnlyAdmin, time_column
from gpu_monitor.history.models import Event, Sample


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    """Samples by host, GPU and time."""

    list_display = (
        time_column("timestamp"),
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

    list_display = (time_column("timestamp"), "host", "gpu_index", "kind", "xid", "message")
    list_filter = ("kind", "host", "gpu_index")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)  # each filter has an index on (its column, timestamp)
