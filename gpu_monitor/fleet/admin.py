"""A read-only admin page for the hosts' latest states."""

from __future__ import annotations

from django.contrib import admin

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.admin import ReadOnlyAdmin


@admin.register(HostState)
class HostStateAdmin(ReadOnlyAdmin):
    """Hosts and the time of their last tick; written by gpu_record only."""

    list_display = ("host", "timestamp", "interval_seconds")
    search_fields = ("host",)
    ordering = ("host",)
