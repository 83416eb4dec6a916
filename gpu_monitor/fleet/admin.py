"""A read-only admin page for the hosts' latest states, the node roles' page, and the
host tokens' list (read-only, with an action that revokes)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from gpu_monitor.admin import ReadOnlyAdmin, time_column
from gpu_monitor.fleet.models import HostState, HostToken, NodeRole


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


@admin.register(HostToken)
class HostTokenAdmin(ReadOnlyAdmin):
    """The nodes' host tokens (manage.py gpu_host_token): listed, never shown (only
    their digest is stored), made by the command only; revoked here by whoever may
    change host tokens."""

    created_at = staticmethod(time_column("created", "created"))
    last_used_at = staticmethod(time_column("last_used", "last used"))
    revoked_at = staticmethod(time_column("revoked", "revoked"))
    list_display = ("host", "token_id", "created_at", "last_used_at", "revoked_at")
    # A token's page shows the list's columns, as the list shows them (never the digest).
    fields = readonly_fields = list_display
    search_fields = ("host", "key")
    ordering = ("host", "created")
    actions = ("revoke",)

    @admin.display(description="id", ordering="key")
    def token_id(self, token: HostToken) -> str:
        """The token's public id, as gpu_host_token list and revoke --id name it."""
        return token.key

    @admin.action(description="Revoke the selected host tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[HostToken]) -> None:
        count = queryset.filter(revoked__isnull=True).update(revoked=timezone.now())
        self.message_user(request, f"Revoked {count} host token(s).")

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """The action's: the model's change permission (the rows stay read-only here)."""
        return admin.ModelAdmin.has_change_permission(self, request)
