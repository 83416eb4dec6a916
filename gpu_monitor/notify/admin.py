"""A read-only admin page of every notice ``gpu_notify`` sent, failed to send, or had
nobody to send to (a row stuck at ``sending``: its run died before the send)."""

from __future__ import annotations

from django.contrib import admin

from gpu_monitor.admin import ReadOnlyAdmin, time_column
from gpu_monitor.notify.models import Notice


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    """Every notice, newest first; written by gpu_notify only."""

    list_display = (
        time_column("created", "when"),
        "user",
        "host",
        "gpu_index",
        "step",
        "channel",
        "address",
        "status",
        "error",
    )
    list_filter = ("status", "channel")
    search_fields = ("user", "host")
    ordering = ("-created",)  # the created index
