"""What a failed query says about the database, for the views' 503s and the recorder:
a table or column the code expects is not there (migrations not applied); the name a
connection gives itself, for PostgreSQL's ``pg_stat_activity``; and a transaction whose
statements have a time limit of their own (``limited``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from django.db import DatabaseError, connections, transaction

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


@contextlib.contextmanager
def limited(using: str, seconds: float) -> Iterator[None]:
    """A transaction on ``using`` whose statements PostgreSQL cancels after ``seconds``
    (``SET LOCAL statement_timeout``: it ends with the transaction, so nothing is left on
    a connection that a pooler in transaction mode hands to the next client)."""
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
        yield
