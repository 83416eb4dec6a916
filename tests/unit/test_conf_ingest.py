"""GPU_MONITOR['INGEST_MAX_BYTES'] and ['INGEST_RATE'] (POST api/gpu/ingest): their
defaults, and the values conf.problems() refuses (and so the system checks)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from gpu_monitor.conf import DEFAULTS, conf


def test_the_defaults() -> None:
    assert DEFAULTS["INGEST_MAX_BYTES"] == 8 * 1024 * 1024
    assert DEFAULTS["INGEST_RATE"] == "120/min"
    assert conf.get("INGEST_RATE") == "120/min"


@pytest.mark.parametrize("value", [1024, 8 * 1024 * 1024, 10**9])
def test_a_limit_of_at_least_a_kibibyte_is_accepted(value: int) -> None:
    with override_settings(GPU_MONITOR={"INGEST_MAX_BYTES": value}):
        assert conf.problems() == []


@pytest.mark.parametrize("value", [1023, 0, -1, 1.5, True, "8M", None])
def test_a_smaller_limit_or_not_a_whole_number_is_e002(value: object) -> None:
    with override_settings(GPU_MONITOR={"INGEST_MAX_BYTES": value}):
        (problem,) = conf.problems()

    assert problem.id == "gpu_monitor.E002"
    assert problem.message.startswith(
        "GPU_MONITOR['INGEST_MAX_BYTES'] must be a whole number of at least 1024, not "
    )


@pytest.mark.parametrize("value", ["120/min", "1/s", "10/second", "5/h", "1000/day", None])
def test_a_drf_rate_or_none_is_accepted(value: object) -> None:
    with override_settings(GPU_MONITOR={"INGEST_RATE": value}):
        assert conf.problems() == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("often", "'often'"),
        ("0/min", "'0/min'"),
        ("120/week", "'120/week'"),
        ("120 / min", "'120 / min'"),
        ("1.5/s", "'1.5/s'"),
        (120, "a int"),
        (["120/min"], "a list of str"),
    ],
)
def test_another_rate_is_e002(value: object, shown: str) -> None:
    with override_settings(GPU_MONITOR={"INGEST_RATE": value}):
        (problem,) = conf.problems()

    assert problem.id == "gpu_monitor.E002"
    assert problem.message == (
        "GPU_MONITOR['INGEST_RATE'] must be None or a rate such as '120/min' (requests per "
        f"s, min, hour or day), not {shown}"
    )
    assert problem.hint.startswith("For example: 'INGEST_RATE': '120/min'")
