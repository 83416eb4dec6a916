"""Downsampling in the database: samples, and the per-period rollups of them.

Every query groups by ``bucket = epoch / step`` (integer division: the same SQL on SQLite
and PostgreSQL) and returns sums, counts and maxima, so that partial aggregates (rollups,
then the samples after the last rollup) combine exactly. The statements are written once
per table, database and shape (``totals_sql``: the text the ORM compiles for the same
query, which a test checks) and rows are read from the cursor as tuples: compiling the
queryset and Django's per-row converters each cost more than the query for an hour of 8
GPUs. Each query runs on the database the project's routers choose for its model,
never on the default connection as such.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, models, router

from gpu_monitor.history.models import ROLLUP_SECONDS, Rollup, Sample

# Per GPU and bucket: [utilization sum, count, max, memory max, total max,
# temperature max, power sum, count]
Totals = list[Any]
# A row of ``totals``: (gpu_uuid, bucket, *the Totals positions).
Row = tuple[Any, ...]
SUMS = (0, 1, 6, 7)  # the positions that add up; the others are maxima

# The Totals positions, from samples and from rollups (whose sums and counts add up).
FROM_SAMPLES = (
    ("SUM", "utilization_percent"),
    ("COUNT", "utilization_percent"),
    ("MAX", "utilization_percent"),
    ("MAX", "used_memory_mb"),
    ("MAX", "total_memory_mb"),
    ("MAX", "temperature_c"),
    ("SUM", "power_draw_w"),
    ("COUNT", "power_draw_w"),
)
FROM_ROLLUPS = (
    ("SUM", "utilization_sum"),
    ("SUM", "utilization_count"),
    ("MAX", "utilization_max"),
    ("MAX", "used_memory_max"),
    ("MAX", "total_memory_max"),
    ("MAX", "temperature_max"),
    ("SUM", "power_sum"),
    ("SUM", "power_count"),
)
AGGREGATES: dict[type[models.Model], tuple[tuple[str, str], ...]] = {
    Sample: FROM_SAMPLES,
    Rollup: FROM_ROLLUPS,
}


def quoted(model: type[models.Model], alias: str) -> tuple[str, dict[str, str]]:
    """``model``'s table and its columns by field name, quoted for the database
    ``alias``."""
    quote = connections[alias].ops.quote_name
    fields = model._meta.concrete_fields
    columns = {field.name: quote(field.column) for field in fields if field.column}
    return quote(model._meta.db_table), columns


@functools.lru_cache(maxsize=32)
def totals_sql(model: type[models.Model], alias: str, one_gpu: bool) -> str:
    """The statement of ``totals`` on ``alias``: parameters step, host, [GPU UUID,]
    first epoch, end epoch."""
    quote = connections[alias].ops.quote_name
    table, columns = quoted(model, alias)
    uuid, epoch, host = (f"{table}.{columns[name]}" for name in ("gpu_uuid", "epoch", "host"))
    values = ", ".join(
        f"{function}({table}.{columns[name]}) AS {quote(f'total_{i}')}"
        for i, (function, name) in enumerate(AGGREGATES[model])
    )
    gpu = f" AND {uuid} = %s" if one_gpu else ""
    return (
        f"SELECT {uuid} AS {quote('gpu_uuid')}, ({epoch} / %s) AS {quote('bucket')}, "
        f"{values} FROM {table} "
        f"WHERE ({host} = %s{gpu} AND {epoch} >= %s AND {epoch} < %s) GROUP BY 1, 2"
    )


def totals(
    model: type[models.Model],
    host: str,
    since: int,
    until: int,
    step: int,
    gpu_uuid: str | None = None,
    using: str | None = None,
) -> list[Row]:
    """Per GPU (or only ``gpu_uuid``) and bucket of ``step`` seconds, the Totals of
    ``host``'s samples or rollups (``model``) from ``since`` to ``until``, in no order;
    read from the database ``using`` (default: where the routers read ``model``)."""
    alias = using or router.db_for_read(model)
    params: list[Any] = [step, host, since, until]
    if gpu_uuid is not None:
        params.insert(2, gpu_uuid)
    with connections[alias].cursor() as cursor:
        cursor.execute(totals_sql(model, alias, gpu_uuid is not None), params)
        rows: list[Row] = cursor.fetchall()
    return rows


def keyed(rows: list[Row]) -> dict[tuple[str, int], Totals]:
    """``rows`` by GPU UUID and bucket, for ``merge``."""
    return {(row[0], row[1]): list(row[2:]) for row in rows}


def merge(into: dict[tuple[str, int], Totals], more: dict[tuple[str, int], Totals]) -> None:
    """Add the partial aggregates ``more`` to ``into`` (sums add, maxima take the larger)."""
    for key, values in more.items():
        if key not in into:
            into[key] = values
            continue
        mine = into[key]
        for i, value in enumerate(values):
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
    rows = totals(Sample, host, start, end, ROLLUP_SECONDS, using=alias)
    if not rows:
        return 0
    samples = Sample.objects.using(alias).filter(host=host, epoch__gte=start, epoch__lt=end)
    found = samples.order_by().values_list("gpu_uuid", "gpu_index", "name").distinct()
    identity = {uuid: (index, name) for uuid, index, name in found}
    rollups = [
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
        for uuid, bucket, *values in rows
    ]
    Rollup.objects.using(alias).bulk_create(
        rollups,
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
