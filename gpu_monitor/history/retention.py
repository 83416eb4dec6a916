"""Deleting old history: one path for the recorder (its host's rows, within a budget,
at most once a minute) and ``gpu_history_maintain`` (every host's rows, to the end).

Samples partitioned by day (PostgreSQL) are dropped whole by ``gpu_history_maintain``;
here only the rows waiting in the DEFAULT partition are deleted. Every delete goes in
batches of ``RETENTION_BATCH`` rows, each its own statement.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import DatabaseError
from django.db.models import Model, QuerySet

from gpu_monitor.database import limited
from gpu_monitor.history import partitions
from gpu_monitor.history.limits import STATEMENT_TIMEOUT_S
from gpu_monitor.history.models import Event, Rollup, Sample

# The recorder's parts log as one logger, the recorder's (docs/history.md).
logger = logging.getLogger("gpu_monitor.history.recorder")

RETENTION_EVERY_S = 60  # the recorder deletes old rows at most once a minute
RETENTION_BATCH = 10_000  # rows per DELETE statement
RETENTION_BUDGET_S = 1.0  # per recorder run; what is left waits for the next minute
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL: permission denied


def older(model: type[Model], alias: str, cutoff: int, host: str | None = None) -> QuerySet[Any]:
    """The rows of ``model`` older than ``cutoff`` (of ``host``, or of every host)."""
    rows = model._default_manager.using(alias)
    return (
        rows.filter(epoch__lt=cutoff) if host is None else rows.filter(host=host, epoch__lt=cutoff)
    )


def delete_older(
    model: type[Model],
    alias: str,
    cutoff: int,
    host: str | None = None,
    deadline: float | None = None,
) -> int:
    """Delete ``older(...)`` in batches until none is left or ``deadline`` passes."""
    return partitions.delete_in_batches(
        older(model, alias, cutoff, host), RETENTION_BATCH, deadline
    )


def delete_from_default(
    alias: str, cutoff: int, host: str | None = None, deadline: float | None = None
) -> int:
    """Delete the samples older than ``cutoff`` that wait in the DEFAULT partition."""
    return partitions.delete_from_default(
        alias, cutoff, RETENTION_BATCH, host=host, deadline=deadline
    )


class Retention:
    """The recorder's retention of its host's rows: ``retention_s`` (None: off, as on a
    node whose role may not delete), run from the writer after a write."""

    def __init__(self, retention_s: int | None) -> None:
        self.retention_s = retention_s
        self.last_run = 0.0  # the epoch of the last run

    def after_write(self, alias: str, host: str, epoch: int) -> None:
        """Prune if it is on and ``RETENTION_EVERY_S`` have passed since the last run."""
        if self.retention_s is not None and epoch - self.last_run >= RETENTION_EVERY_S:
            self.last_run = epoch
            self.prune(alias, host, epoch - self.retention_s)

    def prune(self, alias: str, host: str, cutoff: int) -> None:
        """Delete ``host``'s rows older than ``cutoff``; stop after RETENTION_BUDGET_S
        (the rest waits). A role that may not delete (a node's) turns retention off,
        said once; any other database error is the writer's."""
        deadline = time.monotonic() + RETENTION_BUDGET_S
        try:
            with limited(alias, STATEMENT_TIMEOUT_S):
                if partitions.is_partitioned(alias):
                    delete_from_default(alias, cutoff, host, deadline)
                else:
                    delete_older(Sample, alias, cutoff, host, deadline)
                for model in (Rollup, Event):
                    delete_older(model, alias, cutoff, host, deadline)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            self.retention_s = None
            logger.error(
                "Retention is off: the database role may not delete (%s); run gpu_record "
                "--retention off on a node and gpu_history_maintain where the role may",
                str(exc).strip(),
            )
