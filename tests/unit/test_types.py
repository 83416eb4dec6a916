"""Values derived from the dataclasses (not part of the JSON)."""

from __future__ import annotations

import pytest

from gpu_monitor.types import GPUDevice


@pytest.mark.parametrize(
    ("used", "total", "expected"),
    [
        (0, 81559, 0.0),
        (73403, 81559, pytest.approx(90.0, abs=0.01)),  # the command highlights >= 90%
        (81559, 81559, 100.0),
        (None, None, None),  # memory could not be read
        (0, 0, None),  # a board that reports no memory: no division by zero
    ],
)
def test_memory_used_percent(used: int | None, total: int | None, expected: object) -> None:
    device = GPUDevice(index=0, name="GPU", used_memory_mb=used, total_memory_mb=total)

    assert device.memory_used_percent == expected
