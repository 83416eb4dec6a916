"""Read-only admin pages for the usage rows and the current holds."""

from __future__ import annotations

from django.contrib import admin

from gpu_monitor.admin import ReadOnlyAdmin, time_column
from gpu_monitor.usage.models import Hold, Usage


@admin.register(Usage)
class UsageAdmin(ReadOnlyAdmin):
    """Usage rows, newest period first; written by gpu_record only."""

    list_display = (
        time_column("period"),
        "user",
        "host",
        "gpu_index",
        "seconds_held",
        "idle_seconds",
    )
    search_fields = ("user", "host")
    ordering = ("-period",)  # the period index


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    """Who holds which GPU now, and since when it is idle."""

    list_display = (
        "host",
        "gpu_index",
        "user",
        time_column("held_since"),
        time_column("idle_since"),
        time_column("last_epoch", "last tick"),
        time_column("ended_epoch", "ended"),
    )
    search_fields = ("user", "host")
    ordering = ("host", "gpu_index", "user")
