"""The fleet's rules: a host's state from the age of its last tick, and its summary.

The summary of a host's GPUs (count, utilisation, memory, hottest, problems) is worked
out once per tick by the tick writer (``summary_columns``) and stored beside the
devices, so that listing a thousand hosts reads a few small columns, not their devices.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Value

from gpu_monitor.conf import conf
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.types import HostDetail, HostProblem, HostStateName, HostSummary
from gpu_monitor.history.models import Event
from gpu_monitor.history.views import iso
from gpu_monitor.rules import hardware_problems
from gpu_monitor.types import GPUDevice

STALE_AFTER_INTERVALS = 3  # missed ticks before a host is "stale"
XID_WINDOW_S = 86400
# The GPUDevice fields a stored device is rebuilt from (its MIG devices are not needed
# by the rules, and stay out).
DEVICE_FIELDS = frozenset(f.name for f in dataclasses.fields(GPUDevice)) - {"mig_devices"}
SUMMARY_COLUMNS = (
    "host",
    "epoch",
    "interval_seconds",
    "gpu_count",
    "utilization_percent",
    "used_memory_mb",
    "total_memory_mb",
    "max_temperature_c",
    "problems",
)


def now() -> int:
    """The current Unix time in whole seconds (tests replace it)."""
    return int(time.time())


def state_of(age_seconds: int, interval_seconds: int) -> HostStateName:
    """ "down" once the last tick is ``FLEET_DOWN_AFTER`` seconds old, "stale" once
    more than ``STALE_AFTER_INTERVALS`` intervals have passed without one, else "up"."""
    if age_seconds >= conf.get("FLEET_DOWN_AFTER"):
        return "down"
    if age_seconds > STALE_AFTER_INTERVALS * interval_seconds:
        return "stale"
    return "up"


def in_state(state: HostStateName, at: int) -> Q:
    """The rows ``state_of`` puts in ``state`` at time ``at``, as a database filter (the
    age is ``at - epoch``)."""
    down = Q(epoch__lte=at - conf.get("FLEET_DOWN_AFTER"))
    stale = Q(epoch__lt=Value(at) - STALE_AFTER_INTERVALS * F("interval_seconds"))
    if state == "down":
        return down
    if state == "stale":
        return ~down & stale
    return ~down & ~stale


def device_of(data: dict[str, Any]) -> GPUDevice:
    """A stored device (the API's JSON) as the dataclass the rules read."""
    return GPUDevice(**{k: v for k, v in data.items() if k in DEVICE_FIELDS})


def problems_of(devices: list[dict[str, Any]]) -> list[HostProblem]:
    """One entry per GPU and condition, as the health check defines them."""
    found = []
    for data in devices:
        device = device_of(data)
        for problem in hardware_problems(device):
            found.append(HostProblem(device.index, problem.kind, problem.message))
    return found


def total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def summary_columns(devices: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of a host's devices (as the API renders them), as HostState columns."""
    utilization = [u for d in devices if (u := d.get("utilization_percent")) is not None]
    temperatures = [t for d in devices if (t := d.get("temperature_c")) is not None]
    problems = problems_of(devices)
    return {
        "gpu_count": len(devices),
        "utilization_percent": (
            round(sum(utilization) / len(utilization), 1) if utilization else None
        ),
        "used_memory_mb": total(d.get("used_memory_mb") for d in devices),
        "total_memory_mb": total(d.get("total_memory_mb") for d in devices),
        "max_temperature_c": max(temperatures) if temperatures else None,
        "problems": [dataclasses.asdict(p) for p in problems],
        "problem_count": len(problems),
    }


def summarize(row: HostState, at: int, xid_24h: int = 0) -> HostSummary:
    """``row`` as ``GET hosts`` shows it at time ``at``."""
    age = max(0, at - row.epoch)
    return HostSummary(
        host=row.host,
        last_seen=iso(row.epoch),
        age_seconds=age,
        state=state_of(age, row.interval_seconds),
        interval_seconds=row.interval_seconds,
        gpu_count=row.gpu_count,
        utilization_percent=row.utilization_percent,
        used_memory_mb=row.used_memory_mb,
        total_memory_mb=row.total_memory_mb,
        max_temperature_c=row.max_temperature_c,
        problems=[HostProblem(**p) for p in row.problems],
        xid_24h=xid_24h,
    )


def detail(row: HostState, at: int) -> HostDetail:
    """``row`` as ``GET hosts/<host>`` shows it at time ``at``."""
    age = max(0, at - row.epoch)
    return HostDetail(
        host=row.host,
        recorded_at=iso(row.epoch),
        age_seconds=age,
        state=state_of(age, row.interval_seconds),
        interval_seconds=row.interval_seconds,
        driver=row.driver,
        devices=row.devices,
        count=len(row.devices),
    )


def xid_counts(hosts: Iterable[str], at: int) -> dict[str, int]:
    """XID errors each host recorded in the 24 hours before ``at``, in one query."""
    rows = (
        Event.objects.filter(host__in=list(hosts), kind=Event.Kind.XID, epoch__gt=at - XID_WINDOW_S)
        .order_by()
        .values_list("host")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def selected(
    at: int,
    *,
    state: HostStateName | None = None,
    problem: bool | None = None,
    q: str | None = None,
) -> QuerySet[HostState]:
    """The recorded hosts sorted by host, narrowed by ``state`` (at time ``at``),
    ``problem`` (True: only hosts with problems; False: only those without) and ``q``
    (a substring of the host name, any case); only the summary's columns are read."""
    rows = HostState.objects.order_by("host").only(*SUMMARY_COLUMNS)
    if q:
        rows = rows.filter(host__icontains=q)
    if state is not None:
        rows = rows.filter(in_state(state, at))
    if problem is not None:
        rows = rows.filter(problem_count__gt=0) if problem else rows.filter(problem_count=0)
    return rows


def summaries(rows: Iterable[HostState], at: int) -> list[HostSummary]:
    """``rows`` as ``GET hosts`` shows them at ``at``, with their XIDs of the last day."""
    rows = list(rows)
    counts = xid_counts((row.host for row in rows), at)
    return [summarize(row, at, counts.get(row.host, 0)) for row in rows]
