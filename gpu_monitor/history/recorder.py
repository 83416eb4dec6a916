"""The recorder behind ``manage.py gpu_record``: a sample per GPU per tick, and events.

Each tick reads one snapshot through the manager and writes it in one transaction (a
process killed mid-tick leaves no partial tick). While the database is unreachable,
ticks wait in memory (``HISTORY_BUFFER_TICKS`` of them; beyond that the oldest are
dropped and counted) and are written, oldest first, once it answers again. A thread
waits for XID errors where NVML can deliver them.
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

from django.db import DatabaseError, connection, transaction
from django.db.models import Min

from gpu_monitor.history.aggregate import roll_up, rolled_up_until
from gpu_monitor.history.models import ROLLUP_SECONDS, Event, Rollup, Sample
from gpu_monitor.manager import GPUManager, XidEventsUnavailableError
from gpu_monitor.types import GPUDevice, XidEvent

logger = logging.getLogger(__name__)

RETENTION_EVERY_S = 60  # delete old rows at most once a minute
RETENTION_BATCH = 10_000  # rows per DELETE statement
RETENTION_BUDGET_S = 1.0  # per run; what is left waits for the next minute
XID_WAIT_MS = 500  # how long the XID thread blocks in NVML: bounds the shutdown delay
XID_RETRY_S = 60  # how often to try registering again where NVML could not


@dataclass
class Tick:
    """What one tick records: written together or not at all."""

    epoch: int
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def moment(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


class Recorder:
    """Records the GPUs of this host every ``interval`` seconds until ``stop()``."""

    def __init__(
        self,
        manager: GPUManager,
        *,
        host: str,
        interval: int,
        retention_s: int,
        buffer_ticks: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager = manager
        self.host = host
        self.interval = interval
        self.retention_s = retention_s
        self.buffer: deque[Tick] = deque()
        self.buffer_ticks = buffer_ticks
        self.clock = clock
        self.dropped = 0  # ticks dropped from a full buffer, not yet reported
        self.database_down = False
        self.last_retention = 0.0
        self.stopping = threading.Event()
        self.xid_queue: queue.Queue[XidEvent] = queue.Queue()
        self.nvml_available: bool | None = None  # unknown until the first tick
        self.lost: set[int] = set()  # indexes of the GPUs lost at the last tick
        self.uuids: dict[int, str] = {}  # the last known UUID of each index
        self.dirty_from: int | None = None  # the first period with samples not rolled up

    # -- the loop -------------------------------------------------------------------

    def run(self, once: bool = False) -> None:
        """Tick on wall-clock multiples of the interval until stopped (or once, now)."""
        self.dirty_from = self.unrolled_start()
        listener = None
        if not once:
            listener = threading.Thread(target=self.listen_for_xid, name="gpu-xid", daemon=True)
            listener.start()
        try:
            if once:
                self.tick(int(self.clock()) // self.interval * self.interval)
                return
            while not self.stopping.is_set():
                next_tick = (int(self.clock()) // self.interval + 1) * self.interval
                if self.stopping.wait(max(0.0, next_tick - self.clock())):
                    break
                self.tick(next_tick)
        finally:
            self.stopping.set()
            self.flush()  # what is buffered, one last try
            if listener is not None:
                listener.join(XID_WAIT_MS / 1000 + 0.2)
            connection.close()  # this thread's connection: a server must not keep it open

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler)."""
        self.stopping.set()

    def tick(self, epoch: int) -> None:
        """Read one snapshot, buffer it, write what the database takes, prune."""
        self.buffer.append(self.snapshot(epoch))
        while len(self.buffer) > self.buffer_ticks:
            self.buffer.popleft()
            self.dropped += 1
            log = logger.warning if self.dropped == 1 else logger.debug
            log(
                "History buffer full (%d ticks): dropping the oldest tick while the "
                "database is unreachable",
                self.buffer_ticks,
            )
        self.flush()
        if self.database_down:
            return
        current = epoch // ROLLUP_SECONDS * ROLLUP_SECONDS
        if self.dirty_from is not None and self.dirty_from < current:
            try:
                roll_up(self.host, self.dirty_from, current)
            except DatabaseError as exc:
                self.database_unreachable(exc)
                return
            self.dirty_from = current
        if epoch - self.last_retention >= RETENTION_EVERY_S:
            self.last_retention = epoch
            self.prune(epoch - self.retention_s)

    def unrolled_start(self) -> int | None:
        """Where rolling up resumes: after the last rollup of this host, or at its first
        sample when it has none (samples of an earlier run)."""
        try:
            resume = rolled_up_until(self.host)
            if resume is None:
                first = Sample.objects.filter(host=self.host).aggregate(first=Min("epoch"))
                if first["first"] is not None:
                    resume = first["first"] // ROLLUP_SECONDS * ROLLUP_SECONDS
        except DatabaseError as exc:
            self.database_unreachable(exc)
            return None
        return resume

    # -- reading --------------------------------------------------------------------

    def snapshot(self, epoch: int) -> Tick:
        """One tick's samples and events, from one manager call."""
        tick = Tick(epoch)
        status, devices = self.manager.get_status_and_devices()
        available = status.error_message is None
        if available != self.nvml_available and (self.nvml_available is not None or not available):
            kind = Event.Kind.NVML_AVAILABLE if available else Event.Kind.NVML_UNAVAILABLE
            tick.events.append(self.event(epoch, kind, message=status.error_message or ""))
        self.nvml_available = available
        for device in devices:
            if device.uuid:
                self.uuids[device.index] = device.uuid
            if not device.is_available:
                if device.index not in self.lost:
                    self.lost.add(device.index)
                    tick.events.append(
                        self.event(
                            epoch,
                            Event.Kind.GPU_LOST,
                            device.index,
                            message=device.error_message or "",
                        )
                    )
                continue
            if device.index in self.lost:
                self.lost.discard(device.index)
                tick.events.append(self.event(epoch, Event.Kind.GPU_RECOVERED, device.index))
            if device.uuid:
                tick.samples.append(self.sample(epoch, device))
        while True:
            try:
                xid = self.xid_queue.get_nowait()
            except queue.Empty:
                break
            tick.events.append(
                self.event(
                    int(xid.at),
                    Event.Kind.XID,
                    xid.gpu_index,
                    uuid=xid.gpu_uuid,
                    xid=xid.xid,
                    message=f"XID {xid.xid}",
                )
            )
        return tick

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
            memory_used_mb=device.used_memory_mb,
            memory_total_mb=device.total_memory_mb,
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
        uuid: str | None = None,
        xid: int | None = None,
        message: str = "",
    ) -> Event:
        return Event(
            host=self.host,
            gpu_uuid=uuid or (self.uuids.get(index, "") if index is not None else ""),
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

    # -- writing --------------------------------------------------------------------

    def flush(self) -> None:
        """Write the buffered ticks, oldest first, each in its own transaction."""
        while self.buffer:
            tick = self.buffer[0]
            dropped = self.dropped_event(tick.epoch) if self.dropped else None
            try:
                with transaction.atomic():
                    Sample.objects.bulk_create(tick.samples, ignore_conflicts=True)
                    Event.objects.bulk_create(tick.events + ([dropped] if dropped else []))
            except DatabaseError as exc:
                self.database_unreachable(exc)
                return
            self.buffer.popleft()
            period = tick.epoch // ROLLUP_SECONDS * ROLLUP_SECONDS
            if tick.samples and (self.dirty_from is None or period < self.dirty_from):
                self.dirty_from = period
            if dropped is not None:
                logger.warning("%s", dropped.message)
                self.dropped = 0
            if self.database_down:
                self.database_down = False
                logger.warning(
                    "Database reachable again: writing %d buffered tick(s)", len(self.buffer) + 1
                )

    def dropped_event(self, epoch: int) -> Event:
        message = (
            f"{self.dropped} tick(s) dropped: the database was unreachable for longer than "
            f"the buffer of {self.buffer_ticks} tick(s)"
        )
        return self.event(epoch, Event.Kind.SAMPLES_DROPPED, message=message)

    def database_unreachable(self, exc: Exception) -> None:
        if not self.database_down:
            logger.error(
                "Database unreachable, keeping up to %d tick(s) in memory: %s",
                self.buffer_ticks,
                exc,
            )
            self.database_down = True
        else:
            logger.debug("Database still unreachable: %s", exc)
        connection.close()  # the next try opens a new connection

    def prune(self, cutoff: int) -> None:
        """Delete this host's rows older than ``cutoff`` in batches of RETENTION_BATCH
        rows, each its own statement; stop after RETENTION_BUDGET_S (the rest waits)."""
        started = time.monotonic()
        try:
            for model in (Sample, Rollup, Event):
                while time.monotonic() - started < RETENTION_BUDGET_S:
                    old = model.objects.filter(host=self.host, epoch__lt=cutoff)
                    batch = old.order_by().values_list("pk", flat=True)[:RETENTION_BATCH]
                    deleted, _ = model.objects.filter(pk__in=batch).delete()
                    if deleted < RETENTION_BATCH:
                        break
        except DatabaseError as exc:
            self.database_unreachable(exc)
