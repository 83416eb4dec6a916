"""The recorder behind ``manage.py gpu_record``: a sample per GPU per tick, and events.

Two threads share a buffer of ticks. The sampling thread reads one snapshot through the
manager each tick and appends it; it never touches the database, so a database that
hangs (a frozen server, a lock) delays no tick and no SIGTERM. The writer thread writes
the buffered ticks oldest first, each in one transaction (a process killed mid-tick
leaves no partial tick), then rolls up and prunes. While the database is unreachable,
ticks wait in the buffer (``HISTORY_BUFFER_TICKS`` of them; beyond that the oldest are
dropped and counted). A connection that worked and that the server has ended since is
replaced at once, within the write. Any other database error is either an outage
(retried at the next tick) or permanent (a missing table, a value the column refuses):
the recorder then stops and says what to do. A third thread waits for XID errors where
NVML can deliver them.

Events are worked out by the writer, against what the database last recorded for the
host (read before the first write), so that a restart neither repeats a ``gpu_lost``
nor leaves an old ``nvml_unavailable`` standing. All of it goes to the database that the
project's router picks for the history models.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    connections,
    router,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import Min, OuterRef, Subquery

from gpu_monitor import host as host_details
from gpu_monitor.conf import conf
from gpu_monitor.database import missing_schema
from gpu_monitor.history import partitions, tick_writers
from gpu_monitor.history.aggregate import roll_up, rolled_up_until
from gpu_monitor.history.models import ROLLUP_SECONDS, Event, Rollup, Sample
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.manager import GPUManager, NVMLUnavailableError, XidEventsUnavailableError
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDevicesResponseSerializer,
    GPUProcessesResponseSerializer,
)
from gpu_monitor.types import GPUDevice, GPUDevicesResponse, XidEvent

logger = logging.getLogger(__name__)

RETENTION_EVERY_S = 60  # delete old rows at most once a minute
RETENTION_BATCH = 10_000  # rows per DELETE statement
RETENTION_BUDGET_S = 1.0  # per run; what is left waits for the next minute
XID_WAIT_MS = 250  # how long the XID thread blocks in NVML: bounds the shutdown delay
XID_RETRY_S = 60.0  # how often to try registering again where NVML could not
# The recorder's own database connection (PostgreSQL): a server that does not answer
# a connection attempt, or a statement (a lock held elsewhere), costs at most this long.
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = 30
# A connection that dies silently (a host powered off, a failover, a NAT entry gone) fails
# within KEEPALIVES_IDLE_S + KEEPALIVES_INTERVAL_S * KEEPALIVES_COUNT seconds when idle,
# and within TCP_USER_TIMEOUT_S of data left unacknowledged, not after the kernel's
# retransmissions (about 15 minutes). libpq ignores them on a Unix socket.
KEEPALIVES_IDLE_S = 10
KEEPALIVES_INTERVAL_S = 5
KEEPALIVES_COUNT = 3
TCP_USER_TIMEOUT_S = KEEPALIVES_IDLE_S + KEEPALIVES_INTERVAL_S * KEEPALIVES_COUNT
STALLED_AFTER_S = 10.0  # a write that has not returned by then: the database is not answering
# After stop(): time left to the writer, then leave whatever it does. Less than the 1 s
# promised for SIGTERM, since the interpreter's own exit follows.
STOP_WITHIN_S = 0.4
ONCE_WITHIN_S = CONNECT_TIMEOUT_S + STATEMENT_TIMEOUT_S  # --once: time for its one write
PERMANENT = (ProgrammingError, DataError, IntegrityError, NotSupportedError)
# SQLite reports a missing table or column as an OperationalError, like an outage.
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL: permission denied


@dataclass
class Tick:
    """What NVML said at one tick: written together or not at all. Events other than
    XIDs are worked out at write time, against what the database last recorded."""

    epoch: int
    samples: list[Sample] = field(default_factory=list)
    nvml_error: str | None = None  # None: NVML available
    lost: dict[int, tuple[str, str]] = field(default_factory=dict)  # index: (uuid, message)
    found: dict[int, str] = field(default_factory=dict)  # index: uuid, for GPUs that answer
    xids: list[Event] = field(default_factory=list)
    # For the sub-apps' tick writers (tick_writers): None when none is registered.
    context: TickContext | None = None


@dataclass
class Recorded:
    """The state of a host as its events in the database tell it."""

    nvml_available: bool = True  # a host with no NVML event yet: nothing to announce
    lost: dict[int, str] = field(default_factory=dict)  # index: uuid of each GPU lost


class PermanentDatabaseError(Exception):
    """A database error that retrying will not cure; ``str()`` says what to do."""


def moment(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


def writer_options() -> dict[str, int]:
    """The libpq options of the writer's connection, under the project's own ``OPTIONS``."""
    return {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE_S,
        "keepalives_interval": KEEPALIVES_INTERVAL_S,
        "keepalives_count": KEEPALIVES_COUNT,
        "tcp_user_timeout": TCP_USER_TIMEOUT_S * 1000,
    }


def describe_permanent(exc: DatabaseError) -> str | None:
    """What to do about ``exc`` if it is permanent; None for an outage (retry)."""
    text = str(exc).strip()
    if missing_schema(exc):
        return f"The history tables are missing or out of date ({text}): run manage.py migrate"
    if isinstance(exc, PERMANENT):
        if "row-level security" in text:  # a node's role writing another host's rows
            return (
                f"The database refused the recorder's rows ({text}): this database role "
                "may write only the host it is mapped to in the node roles; give --host "
                'that name (docs/deployment.md, "Each node its own host")'
            )
        return f"The database refused the recorder's rows ({text})"
    return None


class Recorder:
    """Records the GPUs of this host every ``interval`` seconds until ``stop()``."""

    def __init__(
        self,
        manager: GPUManager,
        *,
        host: str,
        interval: int,
        retention_s: int | None,
        buffer_ticks: int,
        clock: Callable[[], float] = time.time,
        processes: bool = False,
    ) -> None:
        if buffer_ticks < 1:
            raise ValueError(f"buffer_ticks must be at least 1, not {buffer_ticks}")
        self.manager = manager
        self.host = host
        self.interval = interval
        self.retention_s = retention_s  # None: never delete (a node; see prune)
        self.buffer_ticks = buffer_ticks
        self.clock = clock
        self.processes = processes  # read the processes for the tick writers
        self.alias = router.db_for_write(Sample)
        # Shared by the sampling and the writer thread, under ``lock``.
        self.lock = threading.Lock()
        self.buffer: deque[Tick] = deque()
        self.dropped = 0  # ticks dropped from a full buffer, not yet recorded
        self.database_down = False
        # Set by stop() (a signal) or a permanent error: sampling ends, the writer has
        # until ``stop_requested + STOP_WITHIN_S``.
        self.stopping = threading.Event()
        self.stop_requested: float | None = None
        self.finishing = threading.Event()  # sampling is over: the writer's last try
        self.wake = threading.Event()  # a tick is waiting for the writer
        self.failure: str | None = None  # a permanent database error, said to the user
        self.last_error = ""  # the reason of the last outage
        self.writing_since: float | None = None  # monotonic start of the write in flight
        self.writer_db: BaseDatabaseWrapper | None = None  # the writer thread's connection
        # The DB-API connection under ``db`` that completed the last write: one that fails
        # later was ended by the server (see ``connection_lost``).
        self.served: Any = None
        self.xid_queue: queue.Queue[XidEvent] = queue.Queue()
        self.uuids: dict[int, str] = {}  # the last known UUID of each index (sampling)
        # The writer's: what the database holds, read before the first write.
        self.recorded = Recorded()
        self.reconciled = False  # whether ``recorded`` and ``dirty_from`` were read
        self.dirty_from: int | None = None  # the first period with samples not rolled up
        self.last_retention = 0.0

    @property
    def db(self) -> BaseDatabaseWrapper:
        """This thread's connection to the history database."""
        return connections[self.alias]

    def unwritten(self) -> int:
        with self.lock:
            return len(self.buffer)

    # -- the loop -------------------------------------------------------------------

    def run(self, once: bool = False) -> None:
        """Tick on wall-clock multiples of the interval until stopped (or once, stamped
        with the second it reads); the writer thread writes. Returns within
        STOP_WITHIN_S of ``stop()`` whatever the database does: what is left is
        ``unwritten()``."""
        writer = threading.Thread(target=self.write_until_finished, name="gpu-write", daemon=True)
        listener = None
        if not once:
            listener = threading.Thread(target=self.listen_for_xid, name="gpu-xid", daemon=True)
        connection_created.connect(self.limit_connection)
        writer.start()
        if listener is not None:
            listener.start()
        try:
            if once:  # the second it reads: a cron job's run is late, not on a multiple
                self.take(int(self.clock()))
            while not once and not self.stopping.is_set():
                next_tick = (int(self.clock()) // self.interval + 1) * self.interval
                if self.stopping.wait(max(0.0, next_tick - self.clock())):
                    break
                self.take(next_tick)
                self.watch_writer()
        finally:
            self.stopping.set()  # the XID listener leaves while the writer writes
            self.finishing.set()
            self.wake.set()
            deadline = time.monotonic() + (ONCE_WITHIN_S if once else STOP_WITHIN_S)
            while writer.is_alive():
                if self.stop_requested is not None:
                    deadline = min(deadline, self.stop_requested + STOP_WITHIN_S)
                if time.monotonic() >= deadline:
                    break
                writer.join(0.02)
            if listener is not None:
                listener.join(max(0.0, deadline - time.monotonic()))
            connection_created.disconnect(self.limit_connection)

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler)."""
        if self.stop_requested is None:
            self.stop_requested = time.monotonic()
        self.stopping.set()

    def tick(self, epoch: int) -> None:
        """One tick in this thread: read a snapshot, then write what is buffered."""
        self.take(epoch)
        self.write()

    def take(self, epoch: int) -> None:
        """Read one snapshot into the buffer, dropping the oldest tick when it is full."""
        tick = self.snapshot(epoch)
        with self.lock:
            self.buffer.append(tick)
            while len(self.buffer) > self.buffer_ticks:
                self.buffer.popleft()
                self.dropped += 1
                log = logger.warning if self.dropped == 1 else logger.debug
                log(
                    "History buffer full (%d ticks): dropping the oldest tick while the "
                    "database is unreachable",
                    self.buffer_ticks,
                )
        self.wake.set()

    def watch_writer(self) -> None:
        """Say so (once) when a write has not returned for STALLED_AFTER_S: a database
        that does not answer at all (a frozen server) raises no error to report."""
        since = self.writing_since
        if since is not None and time.monotonic() - since > STALLED_AFTER_S:
            self.outage(f"no answer for {time.monotonic() - since:.0f} s")

    # -- reading --------------------------------------------------------------------

    def snapshot(self, epoch: int) -> Tick:
        """One tick's samples and GPU states, from one manager call."""
        tick = Tick(epoch)
        status, devices = self.manager.get_status_and_devices()
        tick.nvml_error = status.error_message
        for device in devices:
            if device.uuid:
                self.uuids[device.index] = device.uuid
            if not device.is_available:
                uuid = self.uuids.get(device.index, "")
                tick.lost[device.index] = (uuid, device.error_message or "")
                continue
            tick.found[device.index] = device.uuid or ""
            if device.uuid:
                tick.samples.append(self.sample(epoch, device))
        if tick_writers.registered():
            tick.context = self.context(epoch, devices)
        while True:
            try:
                xid = self.xid_queue.get_nowait()
            except queue.Empty:
                break
            index = xid.gpu_index
            uuid = xid.gpu_uuid or (self.uuids.get(index, "") if index is not None else "")
            tick.xids.append(
                self.event(
                    int(xid.at),
                    Event.Kind.XID,
                    index,
                    uuid=uuid,
                    xid=xid.xid,
                    message=f"XID {xid.xid}",
                )
            )
        return tick

    def context(self, epoch: int, devices: list[GPUDevice]) -> TickContext:
        """The tick as the API renders it, for the tick writers: the devices of this
        snapshot, the driver and (when recorded) the processes."""
        try:
            driver = dict(DriverInfoSerializer(self.manager.get_driver_info()).data)
        except NVMLUnavailableError:
            driver = None
        processes = None
        if self.processes or tick_writers.needs_processes():
            found = host_details.processes(
                self.manager, command_line=conf.get("PROCESS_COMMAND_LINE")
            )
            processes = dict(GPUProcessesResponseSerializer(found).data)
        response = GPUDevicesResponse(devices, len(devices))
        rendered = dict(GPUDevicesResponseSerializer(response).data)
        return TickContext(
            host=self.host,
            epoch=epoch,
            interval=self.interval,
            devices=rendered,
            driver=driver,
            processes=processes,
            processes_recorded=self.processes,
        )

    def sample(self, epoch: int, device: GPUDevice) -> Sample:
        reasons = device.clocks_event_reasons
        return Sample(
            host=self.host,
            gpu_uuid=device.uuid or "",
            gpu_index=device.index,
            name=device.name[:96],
            epoch=epoch,
            timestamp=moment(epoch),
            utilization_percent=device.utilization_percent,
            used_memory_mb=device.used_memory_mb,
            total_memory_mb=device.total_memory_mb,
            temperature_c=device.temperature_c,
            power_draw_w=device.power_draw_w,
            sm_clock_mhz=device.sm_clock_mhz,
            ecc_errors_uncorrected_volatile=device.ecc_errors_uncorrected_volatile,
            remapped_rows_pending=device.remapped_rows_pending,
            clocks_event_reasons=None if reasons is None else ",".join(reasons)[:255],
        )

    def event(
        self,
        epoch: int,
        kind: str,
        index: int | None = None,
        *,
        uuid: str = "",
        xid: int | None = None,
        message: str = "",
    ) -> Event:
        return Event(
            host=self.host,
            gpu_uuid=uuid,
            gpu_index=index,
            epoch=epoch,
            timestamp=moment(epoch),
            kind=kind,
            xid=xid,
            message=message,
        )

    def listen_for_xid(self) -> None:
        """Thread: queue each XID error for the next tick; retry where NVML could not."""
        reported = False
        while not self.stopping.is_set():
            try:
                events = self.manager.listen_for_xid_events()
            except XidEventsUnavailableError as exc:
                if not reported:
                    logger.info("XID events are not recorded: %s", exc)
                    reported = True
                self.stopping.wait(XID_RETRY_S)
                continue
            logger.info("Listening for XID errors on GPU(s) %s", events.gpus)
            try:
                while not self.stopping.is_set():
                    xid = events.wait(XID_WAIT_MS)
                    if xid is not None:
                        logger.warning("XID %d on GPU %s", xid.xid, xid.gpu_index)
                        self.xid_queue.put(xid)
            except Exception as exc:  # NVML went away: register again when it is back
                logger.warning("Waiting for XID events failed: %s", exc)
                self.stopping.wait(XID_RETRY_S)
            finally:
                events.close()

    # -- writing (the writer thread) ----------------------------------------------

    def limit_connection(self, sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        """connection_created: a statement timeout on the writer's connection only (the
        project's other connections keep their settings)."""
        if connection is self.writer_db and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = {int(STATEMENT_TIMEOUT_S * 1000)}")

    def write_until_finished(self) -> None:
        """Thread: write whenever a tick waits, until the sampling is over, then try once
        more. Its own connection gives up on a connection attempt after
        CONNECT_TIMEOUT_S, on a silently dead TCP connection after TCP_USER_TIMEOUT_S or
        its keepalives (unless the project's OPTIONS set them), and on a statement after
        STATEMENT_TIMEOUT_S."""
        db = self.writer_db = self.db
        if db.vendor == "postgresql":
            options = {**writer_options(), **(db.settings_dict.get("OPTIONS") or {})}
            db.settings_dict = {**db.settings_dict, "OPTIONS": options}
        try:
            while self.failure is None:
                self.wake.wait()
                self.wake.clear()
                finishing = self.finishing.is_set()
                self.write()
                if finishing:
                    break
        finally:
            db.close()  # this thread's connection: a server must not keep it open

    def write(self) -> None:
        """Write the buffered ticks, then roll up and prune; an outage keeps the ticks
        for the next try, a permanent error stops the recorder."""
        if self.failure is not None:
            return
        self.writing_since = time.monotonic()
        opened = self.db.connection  # None: this write opens one
        try:
            try:
                written = self.write_buffered()
            except (OperationalError, InterfaceError) as exc:
                if not self.connection_lost(opened):
                    raise
                # Not an outage yet: the server ended a connection that worked
                # (pg_terminate_backend, idle_session_timeout, a pooler's restart, a
                # failover). Once more on a new one, at this tick; a second failure is.
                logger.info(
                    "Database connection lost (%s): writing again on a new one",
                    str(exc).strip(),
                )
                self.close_connection()
                written = self.write_buffered()
            self.served = self.db.connection
        except DatabaseError as exc:
            self.database_error(exc)
        else:
            with self.lock:
                back, self.database_down = self.database_down, False
            if back:
                logger.warning("Database reachable again: %d buffered tick(s) written", written)
        finally:
            self.writing_since = None

    def write_buffered(self) -> int:
        """Write the buffered ticks oldest first, then roll up and prune after the last;
        how many ticks were written."""
        if not self.reconciled:
            self.recorded, self.dirty_from = self.read_recorded()
            self.reconciled = True
        epoch, written = None, 0
        while (tick := self.oldest()) is not None:
            self.write_tick(tick)
            epoch, written = tick.epoch, written + 1
        if epoch is not None:
            self.roll_up(epoch)
            if self.retention_s is not None and epoch - self.last_retention >= RETENTION_EVERY_S:
                self.last_retention = epoch
                self.prune(epoch - self.retention_s)
        return written

    def oldest(self) -> Tick | None:
        with self.lock:
            return self.buffer[0] if self.buffer else None

    def read_recorded(self) -> tuple[Recorded, int | None]:
        """The host's state as its last events say, and where rolling up resumes: after
        the host's last rollup, or at its first sample when it has none."""
        events = Event.objects.using(self.alias).filter(host=self.host)
        recorded = Recorded()
        nvml = (
            events.filter(kind__in=[Event.Kind.NVML_AVAILABLE, Event.Kind.NVML_UNAVAILABLE])
            .order_by("-epoch", "-id")
            .values_list("kind", flat=True)
            .first()
        )
        recorded.nvml_available = nvml != Event.Kind.NVML_UNAVAILABLE
        gpu_kinds = [Event.Kind.GPU_LOST, Event.Kind.GPU_RECOVERED]
        latest = (
            events.filter(kind__in=gpu_kinds, gpu_index=OuterRef("gpu_index"))
            .order_by("-epoch", "-id")
            .values("pk")[:1]
        )
        lost = events.filter(kind__in=gpu_kinds, pk=Subquery(latest), kind=Event.Kind.GPU_LOST)
        for index, uuid in lost.values_list("gpu_index", "gpu_uuid"):
            if index is not None:
                recorded.lost[index] = uuid
        resume = rolled_up_until(self.host, using=self.alias)
        if resume is None:
            samples = Sample.objects.using(self.alias).filter(host=self.host)
            first = samples.aggregate(first=Min("epoch"))["first"]
            if first is not None:
                resume = first // ROLLUP_SECONDS * ROLLUP_SECONDS
        return recorded, resume

    def events_of(self, tick: Tick, recorded: Recorded) -> tuple[list[Event], Recorded]:
        """The tick's events against ``recorded``, and the state once they are written."""
        epoch, events = tick.epoch, []
        after = Recorded(recorded.nvml_available, dict(recorded.lost))
        available = tick.nvml_error is None
        if available != recorded.nvml_available:
            kind = Event.Kind.NVML_AVAILABLE if available else Event.Kind.NVML_UNAVAILABLE
            events.append(self.event(epoch, kind, message=tick.nvml_error or ""))
            after.nvml_available = available
        for index, (uuid, message) in sorted(tick.lost.items()):
            if index not in recorded.lost:
                events.append(
                    self.event(epoch, Event.Kind.GPU_LOST, index, uuid=uuid, message=message)
                )
                after.lost[index] = uuid
        for index, uuid in sorted(tick.found.items()):
            if index in recorded.lost:
                events.append(self.event(epoch, Event.Kind.GPU_RECOVERED, index, uuid=uuid))
                del after.lost[index]
        return events + tick.xids, after

    def write_tick(self, tick: Tick) -> None:
        """One tick in one transaction; events already there (another recorder of the
        host wrote them) are skipped by the unique constraint, as samples are."""
        events, after = self.events_of(tick, self.recorded)
        with self.lock:
            dropped = self.dropped
        if dropped:
            events.append(self.dropped_event(tick.epoch, dropped))
        with transaction.atomic(using=self.alias):
            Sample.objects.using(self.alias).bulk_create(tick.samples, ignore_conflicts=True)
            if tick.context is not None:
                for write in tick_writers.registered():
                    write(tick.context, self.alias)
            Event.objects.using(self.alias).bulk_create(events, ignore_conflicts=True)
        self.recorded = after
        with self.lock:
            if self.buffer and self.buffer[0] is tick:
                self.buffer.popleft()
            else:  # dropped from a full buffer while it was being written
                self.dropped -= 1
            self.dropped -= dropped
        if dropped:
            logger.warning("%s", events[-1].message)
        period = tick.epoch // ROLLUP_SECONDS * ROLLUP_SECONDS
        if tick.samples and (self.dirty_from is None or period < self.dirty_from):
            self.dirty_from = period

    def dropped_event(self, epoch: int, dropped: int) -> Event:
        message = (
            f"{dropped} tick(s) dropped: the database was unreachable for longer than "
            f"the buffer of {self.buffer_ticks} tick(s)"
        )
        return self.event(epoch, Event.Kind.SAMPLES_DROPPED, message=message)

    def roll_up(self, epoch: int) -> None:
        """Roll up the periods that are over and not rolled up yet."""
        current = epoch // ROLLUP_SECONDS * ROLLUP_SECONDS
        if self.dirty_from is not None and self.dirty_from < current:
            roll_up(self.host, self.dirty_from, current, using=self.alias)
            self.dirty_from = current

    def database_error(self, exc: DatabaseError) -> None:
        """An outage: keep the ticks and try again at the next tick. A permanent error:
        say what to do and stop."""
        permanent = describe_permanent(exc)
        if permanent is not None:
            self.failure = permanent
            logger.error("%s", permanent)
            self.stop()
        else:
            self.outage(str(exc).strip())
        self.close_connection()  # the next try opens a new connection

    def connection_lost(self, opened: Any) -> bool:
        """Whether the connection a failed write started on, ``opened``, served the last
        write and is now gone: Django closed it (its rollback failed) or it no longer
        answers. Anything else (no connection yet, a statement timeout) is an outage."""
        if opened is None or opened is not self.served:
            return False
        return self.db.connection is not opened or not self.db.is_usable()

    def close_connection(self) -> None:
        try:
            self.db.close()
        except DatabaseError:
            logger.debug("Closing the broken connection failed too", exc_info=True)

    def outage(self, reason: str) -> None:
        self.last_error = reason
        with self.lock:
            first, self.database_down = not self.database_down, True
        if first:
            logger.error(
                "Database unreachable, keeping up to %d tick(s) in memory: %s",
                self.buffer_ticks,
                reason,
            )
        else:
            logger.debug("Database still unreachable: %s", reason)

    def prune(self, cutoff: int) -> None:
        """Delete this host's rows older than ``cutoff`` in batches of RETENTION_BATCH
        rows, each its own statement; stop after RETENTION_BUDGET_S (the rest waits).
        Samples partitioned by day (PostgreSQL) are left to ``gpu_history_maintain``,
        which drops whole days: only those waiting in the DEFAULT partition go here. A
        role that may not delete (a node's) turns retention off, said once."""
        deadline = time.monotonic() + RETENTION_BUDGET_S
        try:
            if partitions.is_partitioned(self.alias):
                partitions.delete_from_default(
                    self.alias, cutoff, RETENTION_BATCH, host=self.host, deadline=deadline
                )
            else:
                old = Sample.objects.using(self.alias).filter(host=self.host, epoch__lt=cutoff)
                partitions.delete_in_batches(old, RETENTION_BATCH, deadline)
            for model in (Rollup, Event):
                rows = model.objects.using(self.alias).filter(host=self.host, epoch__lt=cutoff)
                partitions.delete_in_batches(rows, RETENTION_BATCH, deadline)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            self.retention_s = None
            logger.error(
                "Retention is off: the database role may not delete (%s); run gpu_record "
                "--retention off on a node and gpu_history_maintain where the role may",
                str(exc).strip(),
            )
