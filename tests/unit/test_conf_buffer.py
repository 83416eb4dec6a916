"""GPU_MONITOR['HISTORY_BUFFER_TICKS']: whole numbers of at least 1 only (0 would make
gpu_record drop every tick), judged by conf.problems() and so by the system checks."""

from __future__ import annotations

import io
from types import ModuleType

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from gpu_monitor.conf import conf


@pytest.mark.parametrize("value", [1, 2, 360, 10**6])
def test_a_buffer_of_at_least_one_tick_is_accepted(value: int) -> None:
    with override_settings(GPU_MONITOR={"HISTORY_BUFFER_TICKS": value}):
        assert conf.problems() == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (0, "not 0"),
        (-1, "not -1"),
        (1.5, "not 1.5"),
        (True, "not True"),
        ("360", "not a str"),
        (None, "not a NoneType"),
    ],
)
def test_a_buffer_below_one_tick_or_not_a_whole_number_is_e002(value: object, says: str) -> None:
    with override_settings(GPU_MONITOR={"HISTORY_BUFFER_TICKS": value}):
        (problem,) = conf.problems()

    assert problem.id == "gpu_monitor.E002"
    assert problem.message.startswith(
        "GPU_MONITOR['HISTORY_BUFFER_TICKS'] must be a whole number of at least 1"
    )
    assert says in problem.message
    assert "'HISTORY_BUFFER_TICKS': 360" in problem.hint


@pytest.mark.django_db
def test_gpu_record_with_a_zero_buffer_stops_with_the_checks_message(
    fake_nvml: ModuleType,
) -> None:
    # gpu_record runs no system checks (some read the database, which may be down): it
    # asks conf.problems() itself, as the API's fail-closed base view does.
    with (
        override_settings(GPU_MONITOR={"HISTORY_BUFFER_TICKS": 0}),
        pytest.raises(CommandError, match=r"gpu_monitor\.E002: .*HISTORY_BUFFER_TICKS"),
    ):
        call_command("gpu_record", "--once", stdout=io.StringIO())


@pytest.mark.django_db
def test_gpu_record_with_a_zero_buffer_and_checks_skipped_refuses_to_start(
    fake_nvml: ModuleType,
) -> None:
    with (
        override_settings(GPU_MONITOR={"HISTORY_BUFFER_TICKS": 0}),
        pytest.raises(CommandError, match=r"HISTORY_BUFFER_TICKS.*at least 1, not 0"),
    ):
        call_command("gpu_record", "--once", stdout=io.StringIO())


@pytest.mark.parametrize(
    ("key", "value", "bounds"),
    [
        ("USAGE_IDLE_PERCENT", -1, "from 0 to 100"),
        ("USAGE_IDLE_PERCENT", 101, "from 0 to 100"),
        ("USAGE_IDLE_MINUTES", 0, "from 1 to 10080"),
        ("USAGE_IDLE_MINUTES", 10081, "from 1 to 10080"),
        ("USAGE_RETENTION", 0, "from 1 to 36500"),
        ("FLEET_DOWN_AFTER", 0, "of at least 1"),
    ],
)
def test_whole_number_keys_outside_their_bounds_are_e002(key: str, value: int, bounds: str) -> None:
    with override_settings(GPU_MONITOR={key: value}):
        (problem,) = conf.problems()

    assert problem.id == "gpu_monitor.E002"
    assert problem.message == f"GPU_MONITOR[{key!r}] must be a whole number {bounds}, not {value}"


@pytest.mark.parametrize(
    ("key", "value"),
    [("USAGE_IDLE_PERCENT", 0), ("USAGE_IDLE_PERCENT", 100), ("USAGE_IDLE_MINUTES", 10080)],
)
def test_whole_number_keys_at_their_bounds_are_accepted(key: str, value: int) -> None:
    with override_settings(GPU_MONITOR={key: value}):
        assert conf.problems() == []


@pytest.mark.parametrize("key", ["METRICS_FLEET", "USAGE_SELF_SERVICE"])
def test_the_new_switches_must_be_booleans(key: str) -> None:
    with override_settings(GPU_MONITOR={key: 1}):
        (problem,) = conf.problems()

    assert problem.message == f"GPU_MONITOR[{key!r}] must be True or False, not int"
