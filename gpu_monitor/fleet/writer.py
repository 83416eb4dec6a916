"""The fleet's part of each recorder tick: the host's row, replaced in one statement
(after one read of the database's clock).

A node whose clock runs ahead would stamp its ticks in the future, and the central site
would read it "up" until that future time even after it stopped. So the row's last tick
is never stored ahead of the database's clock, the one clock every node and the central
site share: a tick more than ``AHEAD_TOLERANCE_S`` ahead of it is stored at the
database's time, and the node logs a warning (once, until its clock agrees again).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from django.db import connections

from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.types import HostProblem
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.params import moment
from gpu_monitor.rules import gpu_problems
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDevicesResponseSerializer,
    GPUProcessesResponseSerializer,
)
from gpu_monitor.types import GPUDevice, GPUDevicesResponse

logger = logging.getLogger(__name__)

# Every column but the key: a tick replaces the whole row.
UPDATED = [f.name for f in HostState._meta.concrete_fields if f.name not in ("id", "host")]
# A tick is due on the second and fires at or after it; a database on another machine
# may be this much behind without the tick being moved.
AHEAD_TOLERANCE_S = 1
# The database's clock in Unix seconds: PostgreSQL's time of the statement (the
# database server's clock); SQLite's is this machine's own, so it only moves a tick
# stamped ahead of this machine's clock.
DATABASE_NOW_SQL = {
    "postgresql": "SELECT EXTRACT(EPOCH FROM STATEMENT_TIMESTAMP())",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}
_ahead: set[str] = set()  # the hosts whose last tick was ahead (logged once)


def database_now(using: str) -> float | None:
    """The database's current Unix time; None on a backend whose clock is not read."""
    connection = connections[using]
    sql = DATABASE_NOW_SQL.get(connection.vendor)
    if sql is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql)
        (value,) = cursor.fetchone()
    return float(value)


def last_seen(context: TickContext, using: str) -> int:
    """The tick's time, or the database's when the tick is more than
    ``AHEAD_TOLERANCE_S`` ahead of it (a node whose clock runs ahead)."""
    now = database_now(using)
    if now is None or context.epoch <= now + AHEAD_TOLERANCE_S:
        if context.host in _ahead:
            _ahead.discard(context.host)
            logger.info(
                "Host %s: this node's clock agrees with the database's again.", context.host
            )
        return context.epoch
    if context.host not in _ahead:
        _ahead.add(context.host)
        logger.warning(
            "Host %s: this node's clock is %d s ahead of the database's: its last tick is "
            "stored at the database's time, so the fleet does not read it as up until then. "
            "Its samples and events keep this node's times: synchronise its clock (NTP).",
            context.host,
            context.epoch - int(now),
        )
    return int(now)


def total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def summary_columns(devices: list[GPUDevice]) -> dict[str, Any]:
    """The summary of a host's devices, as HostState columns (what ``GET hosts`` lists
    without reading the devices' JSON); its problems by ``rules.gpu_problems``."""
    utilization = [u for d in devices if (u := d.utilization_percent) is not None]
    temperatures = [t for d in devices if (t := d.temperature_c) is not None]
    problems = [HostProblem(d.index, p.kind, p.message) for d in devices for p in gpu_problems(d)]
    return {
        "gpu_count": len(devices),
        "utilization_percent": (
            round(sum(utilization) / len(utilization), 1) if utilization else None
        ),
        "used_memory_mb": total(d.used_memory_mb for d in devices),
        "total_memory_mb": total(d.total_memory_mb for d in devices),
        "max_temperature_c": max(temperatures) if temperatures else None,
        "problems": [dataclasses.asdict(p) for p in problems],
        "problem_count": len(problems),
    }


def write_host_state(context: TickContext, using: str) -> None:
    """Insert or replace the host's row in one statement (an upsert: two recorders of
    one host never fail on the unique host), with the devices, driver and (when
    recorded) processes as the API renders them, the summary of its devices and its
    last tick no later than the database's clock (``last_seen``)."""
    devices = context.devices
    response = GPUDevicesResponse(devices, len(devices))
    processes = context.processes if context.processes_recorded else None
    epoch = last_seen(context, using)
    state = HostState(
        host=context.host,
        epoch=epoch,
        timestamp=moment(epoch),
        interval_seconds=context.interval,
        devices=GPUDevicesResponseSerializer(response).data["devices"],
        driver=None if context.driver is None else dict(DriverInfoSerializer(context.driver).data),
        processes=None
        if processes is None
        else dict(GPUProcessesResponseSerializer(processes).data),
        **summary_columns(devices),
    )
    HostState.objects.using(using).bulk_create(
        [state], update_conflicts=True, unique_fields=["host"], update_fields=UPDATED
    )
