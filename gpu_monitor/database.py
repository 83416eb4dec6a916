"""What a failed query says about the database, for the views' 503s and the recorder:
a table or column the code expects is not there (migrations not applied); and the name a
connection gives itself, for PostgreSQL's ``pg_stat_activity``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import DatabaseError

MISSING_SCHEMA = ("no such table", "no such column", "has no column named")  # SQLite
MISSING_SCHEMA_STATES = ("42P01", "42703")  # PostgreSQL: undefined table, undefined column


def missing_schema(exc: DatabaseError) -> bool:
    """Whether ``exc`` says a table or column is missing: run manage.py migrate."""
    state = getattr(exc.__cause__, "sqlstate", None)
    return state in MISSING_SCHEMA_STATES or any(text in str(exc) for text in MISSING_SCHEMA)


def named(options: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """A connection's ``OPTIONS`` with ``application_name`` set to ``name`` (a connection
    parameter, sent when the connection opens: a pooler sees no session ``SET``), unless
    the project's own ``options`` name it already. PostgreSQL shows the first 63 bytes."""
    return {"application_name": name, **(options or {})}
