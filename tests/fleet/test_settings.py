"""GPU_MONITOR['FLEET_DOWN_AFTER']: seconds, validated like the other whole numbers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from gpu_monitor.conf import conf


def test_the_default_is_ten_minutes() -> None:
    assert conf.get("FLEET_DOWN_AFTER") == 600


@pytest.mark.parametrize("value", [0, -5, 1.5, "600", True, None])
def test_anything_but_a_positive_whole_number_is_e002(value: Any) -> None:
    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": value}):
        problems = conf.problems()

    assert [p.id for p in problems] == ["gpu_monitor.E002"]
    assert "GPU_MONITOR['FLEET_DOWN_AFTER'] must be a whole number of at least 1" in (
        problems[0].message
    )
    assert problems[0].hint == "For example: 'FLEET_DOWN_AFTER': 600."


def test_a_positive_whole_number_is_taken() -> None:
    with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": 120}):
        assert conf.problems() == []
        assert conf.get("FLEET_DOWN_AFTER") == 120
