"""The history API's fast paths: its aggregate statement is the one the ORM compiles, and
the columns built without Python code per value are those of the plain formulas."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, Max, Sum, Value

from gpu_monitor.history.aggregate import AGGREGATES, totals_sql
from gpu_monitor.history.models import Rollup, Sample
from gpu_monitor.history.views import EMPTY, averages, bucketed

FUNCTIONS = {"SUM": Sum, "COUNT": Count, "MAX": Max}


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Sample, Rollup])
@pytest.mark.parametrize("one_gpu", [False, True])
def test_the_aggregate_statement_is_the_one_the_orm_compiles(model: Any, one_gpu: bool) -> None:
    rows = model.objects.filter(host="node")
    if one_gpu:
        rows = rows.filter(gpu_uuid="GPU-1")
    bucket = ExpressionWrapper(F("epoch") / Value(30), output_field=BigIntegerField())
    query = (
        rows.filter(epoch__gte=600, epoch__lt=900)
        .order_by()
        .annotate(bucket=bucket)
        .values("gpu_uuid", "bucket")
        .annotate(
            **{
                f"total_{i}": FUNCTIONS[function](name)
                for i, (function, name) in enumerate(AGGREGATES[model])
            }
        )
    )

    sql, params = query.query.get_compiler(using=connection.alias).as_sql()

    assert totals_sql(model, connection.alias, one_gpu) == sql
    assert list(params) == [30, "node", *(["GPU-1"] if one_gpu else []), 600, 900]


def plain(sums: tuple[Any, ...], counts: tuple[Any, ...], digits: int) -> list[Any]:
    return [round(s / c, digits) if c else None for s, c in zip(sums, counts, strict=True)]


@pytest.mark.parametrize(
    ("sums", "counts", "digits"),
    [
        ((57, 0, 100), (1, 1, 1), 1),  # whole numbers: their own rounding
        ((10, 20, 5), (3, 3, 2), 1),  # 3.333.., 6.666.., 2.5 (a tie, to even)
        ((71.234, 70.125, 69.0), (1, 1, 1), 2),  # watts: rounded
        ((100.0, 40.5), (3, 1), 2),  # 33.333..
        ((10, None, 7), (2, 0, 1), 1),  # a gap: null
        ((Decimal(10), 4), (3, 1), 1),  # PostgreSQL's sum of rollups, then samples
        ((4, Decimal(10)), (1, 3), 1),
        ((-0.0, 2.0), (1, 1), 2),  # the sign of a zero stays
    ],
)
def test_averages_are_the_rounded_quotients(
    sums: tuple[Any, ...], counts: tuple[Any, ...], digits: int
) -> None:
    found = averages(sums, counts, digits)

    expected = plain(sums, counts, digits)
    assert [repr(value) for value in found] == [repr(value) for value in expected]


def test_rows_land_in_their_buckets_and_gaps_are_empty() -> None:
    a1 = ("GPU-a", 11, 5, 1, 5, 1, 2, 40, 1.0, 1)
    b10 = ("GPU-b", 10, 7, 1, 7, 1, 2, 41, 2.0, 1)
    a10 = ("GPU-a", 10, 3, 1, 3, 1, 2, 42, 3.0, 1)

    found = bucketed([a1, b10, a10], first=10, buckets=3)

    assert list(found) == ["GPU-a", "GPU-b"]  # in the order they first come
    assert found["GPU-a"] == [a10, a1, EMPTY]
    assert found["GPU-b"] == [b10, EMPTY, EMPTY]


def test_a_gpu_with_rows_outside_the_range_keeps_its_place() -> None:
    """Before 1970 the database's bucket (a truncated division) can fall before the
    first one (a floored division): that row is left out, the GPU is still shown."""
    found = bucketed([("GPU-a", -1, 5, 1, 5, 1, 2, 40, 1.0, 1)], first=0, buckets=2)

    assert found == {"GPU-a": [EMPTY, EMPTY]}
