"""The fleet's rules: a host's state from the age of its last tick, and its summary.

A host's age and state come from ``age_and_state`` only (``in_state`` is the same rule
as a database filter): the list, the detail, the fleet page, ``gpu_fleet`` and the
metrics all call it, and fleet.js shows the state the JSON gives.

The summary of a host's GPUs (count, utilisation, memory, hottest, problems) is worked
out once per tick by the tick writer (``summary_columns``) and stored beside the
devices, so that listing a thousand hosts reads a few small columns, not their devices.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from django.db.models import BigIntegerField, Case, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Greatest

from gpu_monitor.conf import conf
from gpu_monitor.fleet.limits import DEFAULT_SORT, HostFilters, HostSort
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.types import HostDetail, HostProblem, HostStateName, HostSummary
from gpu_monitor.history.models import Event
from gpu_monitor.params import iso
from gpu_monitor.types import DriverInfo, GPUDevice, GPUProcess, MIGDevice

STALE_AFTER_INTERVALS = 3  # "stale" once more than 3 intervals passed without a tick
# "down" no sooner than 6 intervals after the last tick (nor FLEET_DOWN_AFTER): a host
# recording every 15 min is not down at 10 min, and "stale" lies between for every interval.
DOWN_AFTER_INTERVALS = 6
XID_WINDOW_S = 86400
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
SUMMARY_FIELDS = tuple(f.name for f in dataclasses.fields(HostSummary))  # the JSON's keys


def now() -> int:
    """The current Unix time in whole seconds (tests replace it)."""
    return int(time.time())


def limits(interval: Any, down_after: Any, greatest: Any = max) -> tuple[Any, Any]:
    """The rule of a host's state, the one place it is written: a host recording every
    ``interval`` seconds is "stale" once its last tick is more than the first seconds
    old (``STALE_AFTER_INTERVALS`` intervals), "down" once it is at least the second
    (``FLEET_DOWN_AFTER``, ``down_after``, or ``DOWN_AFTER_INTERVALS`` intervals,
    whichever is later). Of numbers, or of database expressions (``in_state``: an
    ``F``, a ``Value`` and ``Greatest``)."""
    return STALE_AFTER_INTERVALS * interval, greatest(down_after, DOWN_AFTER_INTERVALS * interval)


def age_and_state(
    epoch: int, interval_seconds: int, at: int, down_after: int | None = None
) -> tuple[int, HostStateName]:
    """The age at time ``at`` of a last tick at ``epoch`` (0 for a tick from the future:
    the tick writer stores none ahead of the database's clock) and the host's state by
    ``limits`` (``down_after``: ``FLEET_DOWN_AFTER``, read once for many hosts)."""
    if down_after is None:
        down_after = conf.get("FLEET_DOWN_AFTER")
    age = max(0, at - epoch)
    stale_after, down_at = limits(interval_seconds, down_after)
    if age >= down_at:
        return age, "down"
    if age > stale_after:
        return age, "stale"
    return age, "up"


def in_state(state: HostStateName, at: int) -> Q:
    """The rows ``age_and_state`` puts in ``state`` at time ``at``, as a database filter
    (the age is ``at - epoch``) of the same ``limits``."""
    whole = BigIntegerField()
    stale_after, down_at = limits(
        F("interval_seconds"),
        Value(conf.get("FLEET_DOWN_AFTER"), output_field=whole),
        lambda *values: Greatest(*values, output_field=whole),
    )
    down = Q(epoch__lte=Value(at, output_field=whole) - down_at)
    stale = Q(epoch__lt=Value(at, output_field=whole) - stale_after)
    if state == "down":
        return down
    if state == "stale":
        return ~down & stale
    return ~down & ~stale


def summarize(row: HostState, at: int, xid_24h: int = 0) -> HostSummary:
    """``row`` as ``GET hosts`` shows it at time ``at``."""
    age, state = age_and_state(row.epoch, row.interval_seconds, at)
    return HostSummary(
        host=row.host,
        last_seen=iso(row.epoch),
        age_seconds=age,
        state=state,
        interval_seconds=row.interval_seconds,
        gpu_count=row.gpu_count,
        utilization_percent=row.utilization_percent,
        used_memory_mb=row.used_memory_mb,
        total_memory_mb=row.total_memory_mb,
        max_temperature_c=row.max_temperature_c,
        problems=[HostProblem(**p) for p in row.problems],
        xid_24h=xid_24h,
    )


def in_field_order(cls: type, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored object of dataclass ``cls`` (a device, a process, the driver) with its
    keys in ``cls``' field order, as the node's API wrote them (PostgreSQL's jsonb gives
    them back in an order of its own); keys ``cls`` does not declare (a newer node's)
    after them, as stored. The values are not touched: ``field_errors`` is a map."""
    names = [f.name for f in dataclasses.fields(cls)]
    ordered = {name: stored[name] for name in names if name in stored}
    ordered.update((key, value) for key, value in stored.items() if key not in ordered)
    return ordered


def stored_device(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored device in ``GPUDevice``'s field order, its MIG devices in
    ``MIGDevice``'s."""
    device = in_field_order(GPUDevice, stored)
    if isinstance(device.get("mig_devices"), list):
        device["mig_devices"] = [in_field_order(MIGDevice, mig) for mig in device["mig_devices"]]
    return device


def stored_processes(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored processes, each in ``GPUProcess``' field order."""
    return [in_field_order(GPUProcess, process) for process in stored]


def detail(row: HostState, at: int) -> HostDetail:
    """``row`` as ``GET hosts/<host>`` shows it at time ``at``: its devices and driver
    with their keys in the node's order, on every database."""
    age, state = age_and_state(row.epoch, row.interval_seconds, at)
    return HostDetail(
        host=row.host,
        recorded_at=iso(row.epoch),
        age_seconds=age,
        state=state,
        interval_seconds=row.interval_seconds,
        driver=in_field_order(DriverInfo, row.driver) if row.driver is not None else None,
        devices=[stored_device(device) for device in row.devices],
        count=len(row.devices),
    )


def xid_counts(hosts: Iterable[str], at: int) -> dict[str, int]:
    """XID errors each of ``hosts`` recorded in the 24 hours before ``at``, in one query
    over the range of their names (narrow for a page sorted by host, at most the
    fleet's for another order): two parameters, not one per host, whose parsing and
    binding cost more than the query on a large fleet."""
    wanted = set(hosts)
    if not wanted:
        return {}
    rows = (
        Event.objects.filter(
            host__gte=min(wanted),
            host__lte=max(wanted),
            kind=Event.Kind.XID,
            epoch__gt=at - XID_WINDOW_S,
        )
        .order_by()
        .values_list("host")
        .annotate(n=Count("id"))
    )
    return {host: n for host, n in rows if host in wanted}


def order(rows: QuerySet[HostState], sort: HostSort, at: int) -> QuerySet[HostState]:
    """``rows`` in the order ``sort`` names (``limits.SORTS``) at time ``at``, by host
    within a rank: done by the database, so that the first page of ``GET hosts`` holds
    the first hosts of the whole fleet in that order."""
    if sort == "problems":
        rank = Case(
            When(in_state("down", at), then=Value(0)),
            When(problem_count__gt=0, then=Value(1)),
            When(in_state("stale", at), then=Value(2)),
            default=Value(3),
        )
        return rows.alias(rank=rank).order_by("rank", "host")
    if sort == "last_seen":
        return rows.order_by("epoch", "host")
    return rows.order_by("host")


def selected(
    at: int,
    *,
    state: HostStateName | None = None,
    problem: bool | None = None,
    q: str | None = None,
    sort: HostSort = DEFAULT_SORT,
) -> QuerySet[HostState]:
    """The recorded hosts in the order ``sort`` names (by default by host), narrowed by
    ``state`` (at time ``at``), ``problem`` (True: only hosts with problems; False: only
    those without) and ``q`` (a substring of the host name, any case); only the
    summary's columns are read."""
    rows = order(HostState.objects.only(*SUMMARY_COLUMNS), sort, at)
    if q:
        rows = rows.filter(host__icontains=q)
    if state is not None:
        rows = rows.filter(in_state(state, at))
    if problem is not None:
        rows = rows.filter(problem_count__gt=0) if problem else rows.filter(problem_count=0)
    return rows


def filtered(at: int, filters: HostFilters) -> QuerySet[HostState]:
    """``selected`` by ``filters``: what ``GET hosts``, the fleet page and ``gpu_fleet``
    list (``limits.host_filters`` reads their parameters)."""
    return selected(
        at, state=filters.state, problem=filters.problem, q=filters.q, sort=filters.sort
    )


def summaries(rows: Iterable[HostState], at: int) -> list[HostSummary]:
    """``rows`` as ``GET hosts`` shows them at ``at``, with their XIDs of the last day."""
    rows = list(rows)
    counts = xid_counts((row.host for row in rows), at)
    return [summarize(row, at, counts.get(row.host, 0)) for row in rows]


def summary_values(rows: QuerySet[HostState]) -> QuerySet[HostState, tuple[Any, ...]]:
    """``rows`` (from ``selected``) as tuples of the summary's columns, for
    ``summary_items``: no model instance per row."""
    return rows.values_list(*SUMMARY_COLUMNS)


def summary_items(values: Iterable[tuple[Any, ...]], at: int) -> list[dict[str, Any]]:
    """``GET hosts``' items from ``summary_values``' tuples at ``at``: what
    HostSummarySerializer renders of ``summaries``, keyed by HostSummary's fields, built
    without a model instance, a dataclass and a serializer per host (the stored problems
    already are HostProblem's JSON, put back in its field order). Kept beside the
    framework path because that path costs several times as much on a page of a thousand
    hosts (docs/benchmarks.md); tests/fleet/test_hosts_list_items.py holds the two to the
    same JSON, byte for byte."""
    values = list(values)
    counts = xid_counts((row[0] for row in values), at)
    down_after = conf.get("FLEET_DOWN_AFTER")
    items = []
    for host, epoch, interval, gpus, utilization, used, total, hottest, problems in values:
        age, state = age_and_state(epoch, interval, at, down_after)
        values_in_order = (
            host,
            iso(epoch),
            age,
            state,
            interval,
            gpus,
            utilization,
            used,
            total,
            hottest,
            # In HostProblem's field order: PostgreSQL's jsonb gives keys back in its own.
            [
                {"gpu_index": p["gpu_index"], "kind": p["kind"], "message": p["message"]}
                for p in problems
            ],
            counts.get(host, 0),
        )
        items.append(dict(zip(SUMMARY_FIELDS, values_in_order, strict=True)))
    return items
