"""The usage part of each recorder tick, and the retention of usage rows.

At each tick, for each GPU: the users with a process on it, their GPU memory summed;
the tick's interval is added to each user's row of the current five-minute period (one
statement, an upsert), and the holds (who holds which GPU now, idle since when) are
brought up to date, writing an ``idle_held`` event when a user has held a GPU idle for
``USAGE_IDLE_MINUTES`` and an ``idle_held_ended`` event when that ends.

A tick only reads, inserts and updates: the nodes' recorders write with a role that
cannot delete (docs/deployment.md, "A node's database role"). A hold that ends is marked
ended (``Hold.ended_epoch``), never deleted; ``prune_usage`` (``gpu_history_maintain``,
run by the tables' owner) deletes the ended holds.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from gpu_monitor import host as host_details
from gpu_monitor.conf import conf
from gpu_monitor.history.models import Event
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.params import moment
from gpu_monitor.types import GPUProcess
from gpu_monitor.usage.models import MAX_USER_LENGTH, PERIOD_SECONDS, Hold, Usage, live_since
from gpu_monitor.usage.types import UNKNOWN_USER

IDLE_HELD = Event.Kind.IDLE_HELD
IDLE_HELD_ENDED = Event.Kind.IDLE_HELD_ENDED
# Parameters in one statement where the backend states no limit (PostgreSQL's).
MAX_PARAMS = 65535


def uid_owner(pid: int) -> str | None:
    """The owner of ``pid`` as psutil names it (the user name, or the uid as a decimal
    number when it has none), read from /proc; None when this PID namespace cannot see
    the process."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    import pwd  # POSIX only: reached only where /proc exists

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def user_of(process: GPUProcess, local: bool = True) -> str:
    """Who a process belongs to: its ``username`` (psutil's), else, when psutil is not
    installed, the owner of its pid in /proc, else ``unknown``; cut to MAX_USER_LENGTH.

    /proc is read only where psutil is missing, this PID namespace is the host's and
    the process is this machine's (``local``; a pushed tick's is not): where psutil could
    not name the owner (a pid of another namespace or machine, a process that ended or
    whose pid was reused) /proc would name someone else's process.
    """
    name = process.username
    if not name and readable_owner(process, local):
        name = uid_owner(process.pid)
    return (name or UNKNOWN_USER)[:MAX_USER_LENGTH]


def readable_owner(process: GPUProcess, local: bool = True) -> bool:
    missing = process.field_errors.get("username") == host_details.NO_PSUTIL
    return local and missing and not host_details.CHILD_NAMESPACE


@dataclass(frozen=True)
class Held:
    """One user on one GPU at this tick."""

    gpu_uuid: str
    gpu_index: int
    user: str
    memory_mb: int
    utilization: int | None  # the GPU's, None when NVML could not read it
    idle: bool
    shared: bool


def holders(context: TickContext) -> list[Held]:
    """The users on each GPU of the tick. A GPU without a UUID is left out (NVML lists
    no processes of a GPU it cannot read the UUID of)."""
    devices = {d.index: d for d in context.devices if d.uuid}
    memory: dict[int, dict[str, int]] = {}
    processes = context.processes.processes if context.processes is not None else []
    for process in processes:
        if process.gpu_index in devices:
            users = memory.setdefault(process.gpu_index, {})
            user = user_of(process, context.local)
            users[user] = users.get(user, 0) + (process.used_memory_mb or 0)
    threshold = conf.get("USAGE_IDLE_PERCENT")
    found = []
    for index, users in memory.items():
        device = devices[index]
        utilization = device.utilization_percent
        for user, memory_mb in users.items():
            found.append(
                Held(
                    gpu_uuid=device.uuid or "",
                    gpu_index=index,
                    user=user,
                    memory_mb=memory_mb,
                    utilization=utilization,
                    idle=utilization is not None and utilization <= threshold,
                    shared=len(users) > 1,
                )
            )
    return found


COLUMNS = (
    "host",
    "gpu_uuid",
    "gpu_index",
    "user",
    "period",
    "seconds_held",
    "idle_seconds",
    "shared_seconds",
    "utilization_sum",
    "utilization_seconds",
    "max_memory_mb",
    "memory_mib_seconds",
    "first_epoch",
    "last_epoch",
)
USAGE_KEY = (0, 1, 3, 4)  # host, gpu_uuid, user, period: the unique key's places
ADDED = (
    "seconds_held",
    "idle_seconds",
    "shared_seconds",
    "utilization_sum",
    "utilization_seconds",
    "memory_mib_seconds",
)


@functools.lru_cache(maxsize=256)  # per database alias (its quoting) and row count
def upsert_sql(using: str, rows: int = 1) -> str:
    """INSERT ... ON CONFLICT DO UPDATE adding the tick to the periods' rows, ``rows``
    of them in one statement (SQLite 3.24+ and PostgreSQL). The WHERE makes a tick count
    once: a tick at or before the row's last one (written by a second recorder of the
    host) changes nothing."""
    q = connections[using].ops.quote_name
    table = q(Usage._meta.db_table)
    names = [q(c) for c in COLUMNS]  # the fields' names are their columns'
    key = ", ".join(q(c) for c in ("host", "gpu_uuid", "user", "period"))
    added = [f"{q(c)} = {table}.{q(c)} + EXCLUDED.{q(c)}" for c in ADDED]
    m, last = q("max_memory_mb"), q("last_epoch")
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES {placeholders(len(names), rows)} "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(added)}, "
        f"{q('gpu_index')} = EXCLUDED.{q('gpu_index')}, "
        f"{m} = CASE WHEN EXCLUDED.{m} > {table}.{m} THEN EXCLUDED.{m} ELSE {table}.{m} END, "
        f"{last} = EXCLUDED.{last} WHERE {table}.{last} < EXCLUDED.{last}"
    )


def usage_values(context: TickContext, held: Held) -> tuple[Any, ...]:
    interval = context.interval
    known = held.utilization is not None
    return (
        context.host,
        held.gpu_uuid,
        held.gpu_index,
        held.user,
        context.epoch // PERIOD_SECONDS * PERIOD_SECONDS,
        interval,
        interval if held.idle else 0,
        interval if held.shared else 0,
        (held.utilization or 0) * interval,
        interval if known else 0,
        held.memory_mb,
        held.memory_mb * interval,
        context.epoch,
        context.epoch,
    )


def placeholders(columns: int, rows: int) -> str:
    row = f"({', '.join(['%s'] * columns)})"
    return ", ".join([row] * rows)


def upsert(
    using: str, sql: Callable[[str, int], str], rows: list[tuple[Any, ...]], key: tuple[int, ...]
) -> None:
    """Run ``sql(using, n)`` on ``rows`` in as few statements as the database's limit on
    parameters allows (one for up to 71 holders on SQLite): a round trip per statement,
    not per row. Where two rows have one key (their values at the places ``key`` names;
    NVML gives no two GPUs one UUID) the rows are written one statement each, in order:
    one statement cannot upsert a row twice."""
    if not rows:
        return
    with connections[using].cursor() as cursor:
        if repeated(rows, key):
            cursor.executemany(sql(using, 1), rows)
            return
        size = batch_size(using, rows)
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            cursor.execute(sql(using, len(batch)), [value for row in batch for value in row])


def repeated(rows: list[tuple[Any, ...]], key: tuple[int, ...]) -> bool:
    return len({tuple(row[i] for i in key) for row in rows}) < len(rows)


def batch_size(using: str, rows: list[tuple[Any, ...]]) -> int:
    """How many of ``rows`` one statement can take."""
    limit = connections[using].features.max_query_params or MAX_PARAMS
    return max(1, (limit - 1) // len(rows[0]))  # 1: room for the holds' read's host


def write_usage(context: TickContext, using: str) -> None:
    """Add the tick to the usage rows and the holds, in the tick's transaction."""
    found = holders(context)
    update_holds(context, found, [usage_values(context, h) for h in found], using)


@dataclass
class HoldState:
    """A hold as the tick writer reads and writes it (no model instances: a tick writes
    every hold of its host, and Django's bulk upsert cost more than the rest of the tick)."""

    gpu_uuid: str
    user: str
    gpu_index: int
    held_since: int
    idle_since: int | None
    last_epoch: int
    idle_event_sent: bool
    ended_epoch: int | None = None
    pk: int | None = None


HOLD_READ = (
    "gpu_uuid",
    "user",
    "gpu_index",
    "held_since",
    "idle_since",
    "last_epoch",
    "idle_event_sent",
    "ended_epoch",
    "id",
)
HOLD_COLUMNS = (
    "host",
    "gpu_uuid",
    "user",
    "gpu_index",
    "held_since",
    "idle_since",
    "last_epoch",
    "interval_seconds",
    "memory_mb",
    "idle_event_sent",
    "ended_epoch",
)
HOLD_KEY = (0, 1, 2)  # host, gpu_uuid, user


@functools.cache
def holds_sql(using: str) -> str:
    """SELECT of a host's holds, ended ones too, as HoldState's fields."""
    q = connections[using].ops.quote_name
    columns = ", ".join(q(c) for c in HOLD_READ)
    return f"SELECT {columns} FROM {q(Hold._meta.db_table)} WHERE {q('host')} = %s"


@functools.lru_cache(maxsize=256)
def hold_sql(using: str, rows: int = 1) -> str:
    """INSERT ... ON CONFLICT DO UPDATE of ``rows`` holds by their unique key (a user
    back on a GPU starts a new hold in the row of the one that ended)."""
    q = connections[using].ops.quote_name
    names = [q(c) for c in HOLD_COLUMNS]
    key = ", ".join(q(c) for c in ("host", "gpu_uuid", "user"))
    updated = ", ".join(f"{name} = EXCLUDED.{name}" for name in names[3:])
    return (
        f"INSERT INTO {q(Hold._meta.db_table)} ({', '.join(names)}) "
        f"VALUES {placeholders(len(names), rows)} ON CONFLICT ({key}) DO UPDATE SET {updated}"
    )


def read_holds(
    context: TickContext, usage: list[tuple[Any, ...]], using: str
) -> dict[tuple[str, str], HoldState]:
    """Upsert the tick's period rows (``usage``), then read the host's holds: in one
    statement on PostgreSQL (a data-modifying WITH runs to its end whether the query
    reads it or not; it writes another table than the query reads)."""
    sql, params = holds_sql(using), [context.host]
    if (
        usage
        and connections[using].vendor == "postgresql"
        and not repeated(usage, USAGE_KEY)
        and len(usage) <= batch_size(using, usage)
    ):
        sql = f"WITH added AS ({upsert_sql(using, len(usage))}) {sql}"
        params = [value for row in usage for value in row] + params
    else:
        upsert(using, upsert_sql, usage, USAGE_KEY)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return {(row[0], row[1]): HoldState(*row) for row in cursor.fetchall()}


def update_holds(
    context: TickContext, found: list[Held], usage: list[tuple[Any, ...]], using: str
) -> None:
    """Add the tick to its period rows (``usage``); continue, start and end the host's
    holds; write the idle episodes' events. Reads, inserts and updates only (a hold ends
    by an UPDATE of ``ended_epoch``)."""
    epoch, interval = context.epoch, context.interval
    before = read_holds(context, usage, using)
    if any(max(h.last_epoch, h.ended_epoch or 0) >= epoch for h in before.values()):
        return  # a later tick is already written (a second recorder of this host)
    idle_after = conf.get("USAGE_IDLE_MINUTES") * 60
    started: dict[int, list[HoldState]] = {}
    ended: dict[int, list[HoldState]] = {}
    written = []
    for held in found:
        hold = before.pop((held.gpu_uuid, held.user), None)
        if hold is not None and hold.ended_epoch is not None:
            hold = None  # the user is back: a new hold, written over the ended one
        elif hold is not None and hold.last_epoch < live_since(epoch, interval):
            # the recorder was down: a new hold starts, and its idle run with it
            if hold.idle_event_sent:
                ended.setdefault(hold.gpu_index, []).append(hold)
            hold = None
        if hold is None:
            hold = HoldState(
                held.gpu_uuid, held.user, held.gpu_index, epoch - interval, None, 0, False
            )
        hold.gpu_index, hold.last_epoch = held.gpu_index, epoch
        if not held.idle:
            if hold.idle_event_sent:
                ended.setdefault(hold.gpu_index, []).append(hold)
            hold.idle_since, hold.idle_event_sent = None, False
        else:
            if hold.idle_since is None:
                hold.idle_since = epoch - interval
            if not hold.idle_event_sent and epoch - hold.idle_since >= idle_after:
                hold.idle_event_sent = True
                started.setdefault(hold.gpu_index, []).append(hold)
        written.append(
            (
                context.host,
                hold.gpu_uuid,
                hold.user,
                hold.gpu_index,
                hold.held_since,
                hold.idle_since,
                epoch,
                interval,
                held.memory_mb,
                hold.idle_event_sent,
                None,
            )
        )
    gone = [hold for hold in before.values() if hold.ended_epoch is None]
    for hold in gone:
        if hold.idle_event_sent:
            ended.setdefault(hold.gpu_index, []).append(hold)
    if gone:  # an UPDATE: the node's role cannot delete
        Hold.objects.using(using).filter(pk__in=[h.pk for h in gone]).update(ended_epoch=epoch)
    upsert(using, hold_sql, written, HOLD_KEY)
    if started or ended:
        events = [*idle_events(context, started, False), *idle_events(context, ended, True)]
        Event.objects.using(using).bulk_create(events, ignore_conflicts=True)


def idle_events(
    context: TickContext, by_gpu: dict[int, list[HoldState]], ended: bool
) -> Iterable[Event]:
    """One event per GPU and tick (the events' unique key has no user). The message
    names no user: the events API is not behind PROCESS_PERMISSION_CLASSES; ``GET
    usage/idle`` names them."""
    threshold = conf.get("USAGE_IDLE_PERCENT")
    minutes = conf.get("USAGE_IDLE_MINUTES")
    for index, holds in sorted(by_gpu.items()):
        users = f"{len(holds)} user{'s' if len(holds) > 1 else ''}"
        if ended:
            kind, message = (
                IDLE_HELD_ENDED,
                f"GPU {index} is no longer held idle by {users}",
            )
        else:
            kind, message = (
                IDLE_HELD,
                f"GPU {index} held by {users} at utilisation <= {threshold} % for "
                f"{minutes} min (who: GET usage/idle)",
            )
        yield Event(
            host=context.host,
            gpu_uuid=holds[0].gpu_uuid,
            gpu_index=index,
            epoch=context.epoch,
            timestamp=moment(context.epoch),
            kind=kind,
            message=message,
        )


def prune_usage(now: int, using: str) -> str:
    """Delete the usage rows of periods that ended more than ``USAGE_RETENTION`` days
    before ``now``, the holds not seen since then (a host that stopped recording), and
    the holds that ended (the nodes' recorders mark them ended: they cannot delete)."""
    days = conf.get("USAGE_RETENTION")
    cutoff = now - days * 86400
    rows, _ = Usage.objects.using(using).filter(period__lte=cutoff - PERIOD_SECONDS).delete()
    holds = Hold.objects.using(using)
    old, _ = holds.filter(last_epoch__lt=cutoff, ended_epoch__isnull=True).delete()
    ended, _ = holds.filter(ended_epoch__isnull=False).delete()
    return (
        f"usage: deleted {rows} row(s) and {old} hold(s) older than {days} day(s), "
        f"{ended} ended hold(s)"
    )
