"""A read-only admin page of every notice ``gpu_notify`` sent, failed to send, or had
nobody to send to (a row stuck at ``sending``: its run died before the send)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator

from gpu_monitor.admin import ReadOnlyAdmin, time_column
from gpu_monitor.notify.models import Notice

ERROR_CHARACTERS = 60  # of the list's error column (the whole text on hover and the row)


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
        "short_error",
    )
    list_filter = ("status", "channel")
    search_fields = ("user", "host")
    ordering = ("-created",)  # the created index

    @admin.display(description="error (the last)", ordering="error")
    def short_error(self, notice: Notice) -> str:
        """The error, cut to fit the list (a failure kept once a retry sent the notice)."""
        if not notice.error:
            return ""
        short = Truncator(notice.error).chars(ERROR_CHARACTERS)
        return format_html('<span title="{}">{}</span>', notice.error, short)
