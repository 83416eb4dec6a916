"""Plain dataclasses of the fleet API: each field of its JSON is declared here once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HostStateName = Literal["up", "stale", "down"]
STATES: tuple[HostStateName, ...] = ("up", "stale", "down")


@dataclass(frozen=True)
class HostProblem:
    """One sign of failing hardware on one GPU of a host (``gpu_monitor.rules``)."""

    gpu_index: int
    kind: str
    message: str


@dataclass(frozen=True)
class HostSummary:
    """One host in ``GET hosts``: its state and its GPUs summed up at its last tick."""

    host: str
    last_seen: str  # ISO 8601, UTC
    age_seconds: int
    state: HostStateName
    interval_seconds: int
    gpu_count: int
    utilization_percent: float | None  # mean over the GPUs that report it
    used_memory_mb: int | None
    total_memory_mb: int | None
    max_temperature_c: int | None
    problems: list[HostProblem] = field(default_factory=list)
    xid_24h: int = 0


@dataclass(frozen=True)
class HostDetail:
    """One host in ``GET hosts/<host>``: ``devices`` and ``count`` exactly as the
    node's ``GET api/gpu/devices`` gave them at its last tick."""

    host: str
    recorded_at: str  # ISO 8601, UTC
    age_seconds: int
    state: HostStateName
    interval_seconds: int
    driver: dict[str, str] | None
    devices: list[dict[str, Any]]
    count: int


@dataclass(frozen=True)
class HostProcesses:
    """The processes a host recorded at its last tick, shaped like the node's ``GET
    api/gpu/processes`` with the host and the time."""

    host: str
    recorded_at: str  # ISO 8601, UTC
    processes: list[dict[str, Any]]
    count: int
    gpu_errors: dict[str, str] = field(default_factory=dict)
