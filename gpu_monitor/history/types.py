"""What the history API answers: plain dataclasses, columnar as charting libraries want."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HistorySeries:
    """One GPU's downsampled history: ``t[i]`` is the start of bucket ``i`` (Unix seconds)
    and every other list holds that bucket's value, or None where no sample fell in it."""

    gpu_uuid: str
    gpu_index: int
    name: str
    t: list[int]
    utilization_percent: list[float | None]
    utilization_percent_max: list[int | None]
    used_memory_mb: list[int | None]
    total_memory_mb: list[int | None]
    temperature_c: list[int | None]
    power_draw_w: list[float | None]


@dataclass(frozen=True)
class History:
    """The history of one host's GPUs between ``since`` and ``until``."""

    host: str
    since: str
    until: str
    step_seconds: int
    series: list[HistorySeries]
