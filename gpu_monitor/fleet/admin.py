"""A read-only admin page for the hosts' latest states, and the node roles' page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gpu_monitor.admin import ReadOnlyAdmin, time_column
from gpu_monitor.fleet.models import HostState, NodeRole


@admin.register(HostState)
class HostStateAdmin(ReadOnlyAdmin):
    """Hosts and the time of their last tick; written by gpu_record only.

    A host that is retired stays "down" (and its alert fires) while its row is there:
    the one edit allowed here is deleting the row, to whoever may delete host states.
    """

    list_display = ("host", time_column("timestamp", "last tick"), "interval_seconds")
    search_fields = ("host",)
    ordering = ("host",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)


@admin.register(NodeRole)
class NodeRoleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Which host each node's PostgreSQL role may read and write (row-level security,
    docs/deployment.md): edited here by whoever may change node roles."""

    list_display = ("role", "host")
    search_fields = ("role", "host")
    ordering = ("role",)
