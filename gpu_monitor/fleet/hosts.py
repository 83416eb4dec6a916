"""The fleet's rules: a host's state from the age of its last tick, and its summary."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from django.db.models import Count

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


def total(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def summarize(row: HostState, at: int, xid_24h: int = 0) -> HostSummary:
    """``row`` as ``GET hosts`` shows it at time ``at``."""
    devices: list[dict[str, Any]] = row.devices
    age = max(0, at - row.epoch)
    known = [u for d in devices if (u := d.get("utilization_percent")) is not None]
    temperatures = [t for d in devices if (t := d.get("temperature_c")) is not None]
    return HostSummary(
        host=row.host,
        last_seen=iso(row.epoch),
        age_seconds=age,
        state=state_of(age, row.interval_seconds),
        interval_seconds=row.interval_seconds,
        gpu_count=len(devices),
        utilization_percent=round(sum(known) / len(known), 1) if known else None,
        used_memory_mb=total([d.get("used_memory_mb") for d in devices]),
        total_memory_mb=total([d.get("total_memory_mb") for d in devices]),
        max_temperature_c=max(temperatures) if temperatures else None,
        problems=problems_of(devices),
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


def summaries(
    *, state: str | None = None, problem: bool | None = None, q: str | None = None
) -> list[HostSummary]:
    """Every recorded host, sorted by host, narrowed by ``state``, ``problem`` (True:
    only hosts with problems; False: only those without) and ``q`` (a substring of
    the host name, any case); without their XID counts (``with_xids`` adds them)."""
    at = now()
    rows = HostState.objects.order_by("host")
    if q:
        rows = rows.filter(host__icontains=q)
    found = [
        summarize(row, at) for row in rows.only("host", "epoch", "interval_seconds", "devices")
    ]
    if state is not None:
        found = [s for s in found if s.state == state]
    if problem is not None:
        found = [s for s in found if bool(s.problems) == problem]
    return found


def with_xids(found: list[HostSummary]) -> list[HostSummary]:
    """``found`` with the XID errors of the last 24 hours counted."""
    counts = xid_counts((s.host for s in found), now())
    return [dataclasses.replace(s, xid_24h=counts.get(s.host, 0)) for s in found]
