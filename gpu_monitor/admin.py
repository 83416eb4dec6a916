"""The base of the sub-apps' admin pages: their rows are written by ``gpu_record``
only, so the admin looks and never edits; their times read to the second, in UTC.
Registers nothing itself."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from gpu_monitor.params import iso


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows written by gpu_record only: the admin looks, never edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def time_column(field: str, description: str | None = None) -> Callable[[Any], Any]:
    """A ``list_display`` column that shows ``field`` (a ``DateTimeField`` or Unix
    seconds) as the API writes times (``params.iso``: ISO 8601 in UTC to the second),
    sorted by the field. The admin's own rendering shows a datetime to the minute, in
    the project's time zone, and Unix seconds as a bare number. ``description``: the
    column's title, the field's name with spaces by default; empty (None) shows the
    admin's empty value."""

    def column(obj: Any) -> str | None:
        value = getattr(obj, field)
        if value is None:
            return None
        return iso(value.timestamp() if isinstance(value, datetime.datetime) else value)

    column.__name__ = field
    return admin.display(description=description or field.replace("_", " "), ordering=field)(column)
