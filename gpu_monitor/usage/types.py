"""Plain dataclasses of the usage API: each field of its JSON is declared here once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

By = Literal["user", "host", "gpu", "host,user"]
BY: tuple[By, ...] = ("user", "host", "gpu", "host,user")
# The user the usage records for a process whose owner it cannot name (nor its uid).
UNKNOWN_USER = "unknown"


@dataclass(frozen=True)
class UsageRow:
    """The usage of one group of ``GET usage`` (``by``), or of all of them (``total``).

    The key fields that ``by`` does not group by are null (all four in ``total``). Hours
    have three decimals; ``active_gpu_hours`` is ``gpu_hours - idle_gpu_hours`` (ticks
    whose utilisation NVML could not read count as active, and in no mean).
    """

    user: str | None
    host: str | None
    gpu_uuid: str | None
    gpu_index: int | None
    gpu_hours: float
    idle_gpu_hours: float
    active_gpu_hours: float
    shared_gpu_hours: float
    utilization_percent: float | None  # mean GPU utilisation while held
    max_memory_mb: int
    memory_gib_hours: float
    first_seen: str | None  # ISO 8601, UTC: the first and last tick held
    last_seen: str | None


@dataclass(frozen=True)
class UsageReport:
    """``GET usage``: the rows sorted by GPU-hours (most first), and their total."""

    since: str  # ISO 8601, UTC
    until: str
    by: By
    rows: list[UsageRow]
    total: UsageRow


@dataclass(frozen=True)
class Notified:
    """How often ``gpu_notify`` told the holder of an idle GPU about this idle run (its
    episode, from ``idle_since``): the first notice and each reminder count once, whatever
    the channels it went through; only notices sent count."""

    count: int
    last: str | None  # ISO 8601, UTC: when the last was sent; null when count is 0


@dataclass(frozen=True)
class IdleGPU:
    """A GPU a user holds now whose every sample of the last ``minutes`` was idle;
    ``notified`` is null while ``gpu_monitor.notify`` is not installed."""

    host: str
    gpu_index: int
    gpu_uuid: str
    user: str
    idle_since: str  # ISO 8601, UTC
    memory_mb: int
    notified: Notified | None


@dataclass(frozen=True)
class IdleGPUs:
    """``GET usage/idle``."""

    minutes: int
    gpus: list[IdleGPU]
