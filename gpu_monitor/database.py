"""What a failed query says about the database, for the views' 503s and the recorder:
a table or column the code expects is not there (migrations not applied)."""

from __future__ import annotations

from django.db import DatabaseError

MISSING_SCHEMA = ("no such table", "no such column", "has no column named")  # SQLite
MISSING_SCHEMA_STATES = ("42P01", "42703")  # PostgreSQL: undefined table, undefined column


def missing_schema(exc: DatabaseError) -> bool:
    """Whether ``exc`` says a table or column is missing: run manage.py migrate."""
    state = getattr(exc.__cause__, "sqlstate", None)
    return state in MISSING_SCHEMA_STATES or any(text in str(exc) for text in MISSING_SCHEMA)
