"""Downsampling in the database: samples, and the per-period rollups of them.

Every query groups by ``bucket = epoch / step`` (integer division: the same SQL on SQLite
and PostgreSQL) and returns sums, counts and maxima, so that partial aggregates (rollups,
then the samples after the last rollup) combine exactly. The SQL is built by the ORM;
rows are read from the cursor as tuples, since Django's per-row converters cost more
than the query for an hour of 8 GPUs. Each query runs on the database the project's
routers choose for its model (``QuerySet.db``), never on the default connection as such.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import (
    BigIntegerField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import CombinedExpression

from gpu_monitor.history.models import ROLLUP_SECONDS, Rollup, Sample

# Per GPU and bucket: [utilization sum, count, max, memory max, total max,
# temperature max, power sum, count]
Totals = list[Any]
SUMS = (0, 1, 6, 7)  # the positions that add up; the others are maxima


def bucket_of(step: int) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(F("epoch") / Value(step), output_field=BigIntegerField())


# The Totals positions, from samples and from rollups (whose sums and counts add up).
FROM_SAMPLES = (
    Sum("utilization_percent"),
    Count("utilization_percent"),
    Max("utilization_percent"),
    Max("used_memory_mb"),
    Max("total_memory_mb"),
    Max("temperature_c"),
    Sum("power_draw_w"),
    Count("power_draw_w"),
)
FROM_ROLLUPS = (
    Sum("utilization_sum"),
    Sum("utilization_count"),
    Max("utilization_max"),
    Max("used_memory_max"),
    Max("total_memory_max"),
    Max("temperature_max"),
    Sum("power_sum"),
    Sum("power_count"),
)


def from_samples(samples: QuerySet[Sample], step: int) -> dict[tuple[str, int], Totals]:
    return _totals(samples, step, FROM_SAMPLES)


def from_rollups(rollups: QuerySet[Rollup], step: int) -> dict[tuple[str, int], Totals]:
    return _totals(rollups, step, FROM_ROLLUPS)


def _totals(
    rows: QuerySet[Any], step: int, aggregates: tuple[Any, ...]
) -> dict[tuple[str, int], Totals]:
    """Per GPU and bucket, ``aggregates`` in the order of the Totals positions."""
    query = (
        rows.order_by()
        .annotate(bucket=bucket_of(step))
        .values("gpu_uuid", "bucket")
        .annotate(**{f"total_{i}": aggregate for i, aggregate in enumerate(aggregates)})
    )
    return _run(query)


def _run(query: QuerySet[Any, Any]) -> dict[tuple[str, int], Totals]:
    alias = query.db
    try:
        sql, params = query.query.get_compiler(using=alias).as_sql()
    except EmptyResultSet:  # .none(): nothing to ask the database
        return {}
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return {(row[0], row[1]): list(row[2:]) for row in cursor.fetchall()}


def merge(into: dict[tuple[str, int], Totals], more: dict[tuple[str, int], Totals]) -> None:
    """Add the partial aggregates ``more`` to ``into`` (sums add, maxima take the larger)."""
    for key, totals in more.items():
        if key not in into:
            into[key] = totals
            continue
        mine = into[key]
        for i, value in enumerate(totals):
            if value is None:
                continue
            if mine[i] is None:
                mine[i] = value
            elif i in SUMS:
                mine[i] += value
            else:
                mine[i] = max(mine[i], value)


def rolled_up_until(host: str, using: str | None = None) -> int | None:
    """The end of the last period rolled up for ``host`` (None: none is), read from the
    database ``using`` (default: where the routers read rollups)."""
    rollups = Rollup.objects.using(using or router.db_for_read(Rollup))
    latest = rollups.filter(host=host).order_by("-epoch").values_list("epoch", flat=True)
    last = latest.first()
    return None if last is None else last + ROLLUP_SECONDS


def roll_up(host: str, start: int, end: int, using: str | None = None) -> int:
    """(Re)compute the rollups of ``host``'s periods from ``start`` to ``end`` (period
    boundaries) from their samples; returns how many rows were written. Reads and writes
    the database ``using`` (default: where the routers write rollups), so that the
    samples just written are the ones summed up."""
    alias = using or router.db_for_write(Rollup)
    samples = Sample.objects.using(alias).filter(host=host, epoch__gte=start, epoch__lt=end)
    totals = from_samples(samples, ROLLUP_SECONDS)
    if not totals:
        return 0
    found = samples.order_by().values_list("gpu_uuid", "gpu_index", "name").distinct()
    identity = {uuid: (index, name) for uuid, index, name in found}
    rows = [
        Rollup(
            host=host,
            gpu_uuid=uuid,
            gpu_index=identity[uuid][0],
            name=identity[uuid][1],
            epoch=bucket * ROLLUP_SECONDS,
            utilization_sum=values[0] or 0,
            utilization_count=values[1] or 0,
            utilization_max=values[2],
            used_memory_max=values[3],
            total_memory_max=values[4],
            temperature_max=values[5],
            power_sum=values[6] or 0.0,
            power_count=values[7] or 0,
        )
        for (uuid, bucket), values in totals.items()
    ]
    Rollup.objects.using(alias).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["host", "gpu_uuid", "epoch"],
        update_fields=[
            "gpu_index",
            "name",
            "utilization_sum",
            "utilization_count",
            "utilization_max",
            "used_memory_max",
            "total_memory_max",
            "temperature_max",
            "power_sum",
            "power_count",
        ],
    )
    return len(rows)
