"""The usage report and the idle-held GPUs, as plain functions over the usage tables.

``GET usage`` and ``GET usage/idle``, the ``gpu_usage`` command, the usage page and
``bench/usage.py`` all call these two functions; each returns exactly the API's JSON
body (a dict), so they agree by construction:

- ``usage_report(since=, until=, by=, host=None, user=None, using=None)``: the rows of
  the whole five-minute periods that hold any moment from ``since`` (Unix seconds) to
  ``until`` (excluded), grouped ``by`` one of ``BY``, optionally of one host and/or one
  user, in ONE aggregate query; the total is summed from the rows. The body's
  ``since`` and ``until`` are that window (``period_window``): ``since`` rounded down
  and ``until`` rounded up to a period boundary.
- ``idle_now(minutes=, host=None, user=None, now=None, using=None)``: the holds not
  ended, seen at the host's last ticks, whose every sample of the last ``minutes`` was
  idle; with ``gpu_monitor.notify`` installed, how often each one's holder was told
  (``notified``, one more query; null without it).

Both read the database ``using``, by default the one the project's routers choose for
reading their model (``router.db_for_read``, as the history's aggregates), so a project
that routes the usage tables with the history's (docs/fleet.md) reads them there.

Neither checks its input: the views and the command parse it (``gpu_monitor.params``,
``BY``) and turn bad input into a 400 or a CommandError.
"""

from __future__ import annotations

import time
from typing import Any, cast

from django.apps import apps
from django.db import router
from django.db.models import F, Max, Min, QuerySet, Sum

from gpu_monitor.params import iso
from gpu_monitor.usage.models import PERIOD_SECONDS, Hold, Usage, live_since
from gpu_monitor.usage.serializers import IdleGPUsSerializer, UsageReportSerializer
from gpu_monitor.usage.types import BY, By, IdleGPU, IdleGPUs, Notified, UsageReport, UsageRow

# The columns each ``by`` groups on.
KEYS: dict[str, tuple[str, ...]] = {
    "user": ("user",),
    "host": ("host",),
    "gpu": ("host", "gpu_uuid"),
    "host,user": ("host", "user"),
}
SUMS = {
    "held": Sum("seconds_held"),
    "idle": Sum("idle_seconds"),
    "shared": Sum("shared_seconds"),
    "u_sum": Sum("utilization_sum"),
    "u_seconds": Sum("utilization_seconds"),
    "memory_max": Max("max_memory_mb"),
    "memory_seconds": Sum("memory_mib_seconds"),
    "first": Min("first_epoch"),
    "last": Max("last_epoch"),
}
TOTALLED = ("held", "idle", "shared", "u_sum", "u_seconds", "memory_seconds")
Episode = tuple[str, str, str, int]  # host, gpu_uuid, user, idle_since: one idle run


def hours(seconds: int) -> float:
    return round(seconds / 3600, 3)


def usage_row(values: dict[str, Any]) -> UsageRow:
    """A row from the sums of its group (seconds) in the API's units."""
    held, idle = values["held"] or 0, values["idle"] or 0
    u_seconds = values["u_seconds"] or 0
    return UsageRow(
        user=values.get("user"),
        host=values.get("host"),
        gpu_uuid=values.get("gpu_uuid"),
        gpu_index=values.get("gpu_index"),
        gpu_hours=hours(held),
        idle_gpu_hours=hours(idle),
        active_gpu_hours=hours(held - idle),
        shared_gpu_hours=hours(values["shared"] or 0),
        utilization_percent=round(values["u_sum"] / u_seconds, 1) if u_seconds else None,
        max_memory_mb=values["memory_max"] or 0,
        memory_gib_hours=round((values["memory_seconds"] or 0) / 1024 / 3600, 3),
        first_seen=None if values["first"] is None else iso(values["first"]),
        last_seen=None if values["last"] is None else iso(values["last"]),
    )


def period_window(since: int, until: int) -> tuple[int, int]:
    """The window of the periods counted from ``since`` to ``until``: the start of the
    period holding ``since``, the end of the period holding the last second before
    ``until`` (``until`` itself when it is a period boundary)."""
    return since // PERIOD_SECONDS * PERIOD_SECONDS, -(-until // PERIOD_SECONDS) * PERIOD_SECONDS


def grouped(
    since: int, until: int, by: str, host: str | None, user: str | None, using: str
) -> list[dict[str, Any]]:
    """The sums per group of the periods from ``since`` to ``until`` (period bounds):
    one aggregate query, most GPU-hours first."""
    rows = Usage.objects.using(using).filter(period__gte=since, period__lt=until)
    if host is not None:
        rows = rows.filter(host=host)
    if user is not None:
        rows = rows.filter(user=user)
    keys = KEYS[by]
    extra = {"gpu_index": Max("gpu_index")} if by == "gpu" else {}
    query = rows.order_by().values(*keys).annotate(**SUMS, **extra)
    # Ties (equal GPU-hours) by name, and GPUs by host and index as nvidia-smi lists them.
    tie = ("host", "gpu_index") if by == "gpu" else keys
    return list(query.order_by("-held", *tie))


def usage_report(
    *,
    since: int,
    until: int,
    by: str,
    host: str | None = None,
    user: str | None = None,
    using: str | None = None,
) -> dict[str, Any]:
    """``GET usage``'s body: ``{"since", "until", "by", "rows": [...], "total": {...}}``,
    ``since`` and ``until`` the window counted (``period_window``); ValueError for a
    ``by`` not in ``BY``."""
    if by not in KEYS:
        raise ValueError(f"by: one of {', '.join(BY)}, not {by!r}")
    since, until = period_window(since, until)
    groups = grouped(since, until, by, host, user, using or router.db_for_read(Usage))
    total: dict[str, Any] = {name: sum(g[name] or 0 for g in groups) for name in TOTALLED}
    firsts = [g["first"] for g in groups if g["first"] is not None]
    lasts = [g["last"] for g in groups if g["last"] is not None]
    total.update(
        memory_max=max((g["memory_max"] or 0 for g in groups), default=0),
        first=min(firsts, default=None),
        last=max(lasts, default=None),
    )
    report = UsageReport(
        since=iso(since),
        until=iso(until),
        by=cast(By, by),
        rows=[usage_row(g) for g in groups],
        total=usage_row(total),
    )
    return dict(UsageReportSerializer(report).data)


def idle_holds(
    *,
    minutes: int,
    host: str | None = None,
    user: str | None = None,
    now: int | None = None,
    using: str | None = None,
) -> QuerySet[Hold]:
    """The holds idle for ``minutes`` or more at ``now`` (default the time now): not
    ended, seen at one of their host's last ``GAP_INTERVALS`` ticks, their idle run
    begun ``minutes`` or more before; of one host and/or user. ``idle_now``'s rows, and
    the usage metrics' (counted by the database)."""
    at = int(time.time()) if now is None else now
    holds = Hold.objects.using(using or router.db_for_read(Hold)).filter(
        ended_epoch__isnull=True,
        idle_since__lte=at - minutes * 60,
        last_epoch__gte=live_since(at, F("interval_seconds")),
    )
    if host is not None:
        holds = holds.filter(host=host)
    if user is not None:
        holds = holds.filter(user=user)
    return holds


def idle_now(
    *,
    minutes: int,
    host: str | None = None,
    user: str | None = None,
    now: int | None = None,
    using: str | None = None,
) -> dict[str, Any]:
    """``GET usage/idle``'s body: ``{"minutes", "gpus": [...]}``, the ``idle_holds``
    by host, GPU index and user, with how often each was told (``notified``)."""
    holds = idle_holds(minutes=minutes, host=host, user=user, now=now, using=using)
    found = list(holds.order_by("host", "gpu_index", "user"))
    told = notices([episode(hold) for hold in found])
    gpus = [
        IdleGPU(
            host=hold.host,
            gpu_index=hold.gpu_index,
            gpu_uuid=hold.gpu_uuid,
            user=hold.user,
            idle_since=iso(hold.idle_since or 0),
            memory_mb=hold.memory_mb,
            notified=None if told is None else notified(told.get(episode(hold))),
        )
        for hold in found
    ]
    return dict(IdleGPUsSerializer(IdleGPUs(minutes=minutes, gpus=gpus)).data)


def episode(hold: Hold) -> Episode:
    """The idle run ``hold`` is in, as the notify sub-app records its notices."""
    return (hold.host, hold.gpu_uuid, hold.user, hold.idle_since or 0)


def notices(episodes: list[Episode]) -> dict[Episode, tuple[int, int]] | None:
    """``{episode: (notices sent, Unix seconds of the last)}`` of those told at least
    once, read where the project's routers put the notices (one query); None while
    ``gpu_monitor.notify`` is not installed."""
    if not apps.is_installed("gpu_monitor.notify"):
        return None
    # Imported here: usage works without notify, and notify builds on this module.
    from gpu_monitor.notify.summary import notified as summary

    return summary(episodes)


def notified(told: tuple[int, int | None] | None) -> Notified:
    """An episode's ``notified`` from its ``(count, last)``; never told: count 0."""
    if told is None:
        return Notified(count=0, last=None)
    count, last = told
    return Notified(count=count, last=None if last is None else iso(last))
