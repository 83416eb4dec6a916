"""Day partitions of the samples table on PostgreSQL, and the two ways old rows leave.

On PostgreSQL, migration 0004 partitions ``Sample``'s table by range of ``epoch``: one
partition per UTC day (``<table>_pYYYYMMDD``) and a DEFAULT partition
(``<table>_default``) that takes any row whose day has none, so an insert never fails.
``manage.py gpu_history_maintain`` creates the coming days ahead and drops whole days
past the retention: a DROP TABLE costs the same at a thousand rows or a hundred million.
Elsewhere (SQLite, a table not partitioned) and in the plain tables (rollups, events),
old rows are deleted in batches, each batch its own statement.

Only the central site's upkeep (the maintenance command) creates and drops partitions:
a node's database role may not (docs/deployment.md). Privileges on the partitions do not
matter to a node: PostgreSQL checks them on the parent table that the ORM names.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import QuerySet

from gpu_monitor.history.models import Sample
from gpu_monitor.params import moment

DAY = 86400
# How long a DROP or an ATTACH waits for its lock on the parent table before it gives up
# (the next run tries again): while it waits, every insert into the table queues behind it.
LOCK_TIMEOUT_MS = 5000
_BOUND = re.compile(r"FOR VALUES FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


@dataclass(frozen=True)
class Partition:
    """A partition of the samples table: ``start <= epoch < end``; both None for the
    DEFAULT partition."""

    name: str
    start: int | None
    end: int | None

    @property
    def is_default(self) -> bool:
        return self.start is None

    @property
    def label(self) -> str:
        """The day (``2026-12-02``) of a one-day partition, else its name."""
        if self.start is not None and self.end == self.start + DAY and self.start % DAY == 0:
            return day_label(self.start)
        return self.name


def table() -> str:
    return Sample._meta.db_table


def default_name() -> str:
    return f"{table()}_default"


def day_name(start: int) -> str:
    """The name of the partition of the UTC day that starts at ``start``."""
    return f"{table()}_p{moment(start):%Y%m%d}"


def day_label(epoch: int) -> str:
    return f"{moment(epoch):%Y-%m-%d}"


def day_start(epoch: int) -> int:
    return epoch // DAY * DAY


def quote(using: str, name: str) -> str:
    return connections[using].ops.quote_name(name)


def is_partitioned(using: str) -> bool:
    """Whether the samples table of database ``using`` is a partitioned PostgreSQL table."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [quote(using, table())]
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions(using: str) -> list[Partition]:
    """The samples table's partitions: the DEFAULT one first, then by start."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            [quote(using, table())],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.fullmatch(bound)
        if match:
            found.append(Partition(name, int(match.group(1)), int(match.group(2))))
        elif bound == "DEFAULT":
            found.append(Partition(name, None, None))
    return sorted(found, key=lambda p: (p.start is not None, p.start or 0))


def lock_timeout(using: str) -> None:
    """In the current transaction, give up on a lock after LOCK_TIMEOUT_MS."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")


@dataclass(frozen=True)
class Created:
    """A day partition made by ``create_days``, and the rows it took from DEFAULT."""

    partition: Partition
    moved: int


def create_day(using: str, start: int) -> Created:
    """Create the partition of the UTC day from ``start``. Rows of that day waiting in
    the DEFAULT partition (recorded before the day had one) move into it: PostgreSQL
    refuses a new partition whose rows the DEFAULT partition holds.

    The table is made apart and attached: ATTACH takes a lock on the parent table that
    inserts do not wait for (CREATE TABLE ... PARTITION OF takes one they do, and an
    insert that waited on it while holding its own lock would deadlock with this)."""
    end = start + DAY
    name, parent, default = day_name(start), table(), default_name()
    q = connections[using].ops.quote_name
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        lock_timeout(using)
        # No row may reach DEFAULT between the move and the attach.
        cursor.execute(f"LOCK TABLE {q(default)} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            f"CREATE TABLE {q(name)} (LIKE {q(parent)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {q(default)} WHERE epoch >= %s AND epoch < %s "
            f"RETURNING *) INSERT INTO {q(name)} SELECT * FROM moved",
            [start, end],
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {q(parent)} ATTACH PARTITION {q(name)} "
            f"FOR VALUES FROM ({int(start)}) TO ({int(end)})"
        )
    return Created(Partition(name, start, end), moved)


def days_to_create(using: str, first: int, count: int) -> list[int]:
    """The starts of the ``count`` UTC days from the day of ``first`` that no partition
    covers yet (a partition made by hand that overlaps a day counts as covering it)."""
    existing = [p for p in partitions(using) if not p.is_default]
    starts = [day_start(first) + n * DAY for n in range(count)]
    return [
        start
        for start in starts
        if not any(p.start < start + DAY and start < p.end for p in existing)  # type: ignore[operator]
    ]


def droppable(using: str, cutoff: int) -> list[Partition]:
    """The partitions (DEFAULT aside) whose every row is older than ``cutoff``."""
    return [p for p in partitions(using) if p.end is not None and p.end <= cutoff]


def drop(using: str, partition: Partition) -> float:
    """DROP one partition; returns the seconds the statement took."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        lock_timeout(using)
        started = time.perf_counter()
        cursor.execute(f"DROP TABLE {quote(using, partition.name)}")
        return time.perf_counter() - started


def delete_in_batches(rows: QuerySet[Any], batch: int, deadline: float | None = None) -> int:
    """Delete ``rows`` ``batch`` at a time, each batch one statement, until none is left
    or ``time.monotonic()`` passes ``deadline``; returns how many were deleted."""
    deleted = 0
    while deadline is None or time.monotonic() < deadline:
        keys = rows.order_by().values_list("pk", flat=True)[:batch]
        count, _ = rows.model._default_manager.using(rows.db).filter(pk__in=keys).delete()
        deleted += count
        if count < batch:
            break
    return deleted


def delete_from_default(
    using: str, cutoff: int, batch: int, host: str | None = None, deadline: float | None = None
) -> int:
    """Delete the rows older than ``cutoff`` (of ``host``, or of every host) that wait in
    the DEFAULT partition, ``batch`` at a time; the day partitions are left alone (they
    are dropped whole). Returns how many were deleted."""
    default = quote(using, default_name())
    where = "epoch < %s" if host is None else "host = %s AND epoch < %s"
    params: list[str | int] = [cutoff] if host is None else [host, cutoff]
    deleted = 0
    with connections[using].cursor() as cursor:
        while deadline is None or time.monotonic() < deadline:
            cursor.execute(
                # An array of row addresses: a TID scan, where IN (...) would scan the table.
                f"DELETE FROM {default} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {default} WHERE {where} LIMIT {int(batch)}))",
                params,
            )
            deleted += cursor.rowcount
            if cursor.rowcount < batch:
                break
    return deleted
