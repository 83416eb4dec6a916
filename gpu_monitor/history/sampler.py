"""The recorder's sampling side: one snapshot through the manager per tick, and the
thread that waits for XID errors where NVML can deliver them. It never touches the
database, so a database that hangs delays no tick and no SIGTERM."""

from __future__ import annotations

import logging
import queue
import threading

from gpu_monitor import host as host_details
from gpu_monitor.conf import conf
from gpu_monitor.history import tick_writers
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.recorded import event
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.manager import GPUManager, NVMLUnavailableError, XidEventsUnavailableError
from gpu_monitor.params import moment
from gpu_monitor.types import GPUDevice, XidEvent

# The recorder's parts log as one logger, the recorder's (docs/history.md).
logger = logging.getLogger("gpu_monitor.history.recorder")

XID_WAIT_MS = 250  # how long the XID thread blocks in NVML: bounds the shutdown delay
XID_RETRY_S = 60.0  # how often to try registering again where NVML could not


def sample_of(host: str, epoch: int, device: GPUDevice) -> Sample:
    """The sample of an available ``device`` with a UUID at ``epoch``: what the recorder
    writes, read here or pushed to the site (``wire.decode``)."""
    reasons = device.clocks_event_reasons
    return Sample(
        host=host,
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


class Sampler:
    """Reads the GPUs of ``host`` into ticks; ``processes``: read the processes at every
    tick for the tick writers' context even when no writer needs them; ``push``: every
    tick has its context, with the processes (``gpu_record --push``: the site's tick
    writers are not this node's to know)."""

    def __init__(
        self,
        manager: GPUManager,
        *,
        host: str,
        interval: int,
        processes: bool,
        push: bool = False,
    ) -> None:
        self.manager = manager
        self.host = host
        self.interval = interval
        self.processes = processes
        self.push = push
        self.xid_queue: queue.Queue[XidEvent] = queue.Queue()
        self.uuids: dict[int, str] = {}  # the last known UUID of each index

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
                tick.samples.append(sample_of(self.host, epoch, device))
        if self.push or tick_writers.registered():
            tick.context = self.context(epoch, devices)
        while True:
            try:
                xid = self.xid_queue.get_nowait()
            except queue.Empty:
                break
            index = xid.gpu_index
            uuid = xid.gpu_uuid or (self.uuids.get(index, "") if index is not None else "")
            tick.xids.append(
                event(
                    self.host,
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
        """The tick for the tick writers: the devices of this snapshot, the driver and
        (when recorded or a writer needs them) the processes."""
        try:
            driver = self.manager.get_driver_info()
        except NVMLUnavailableError:
            driver = None
        processes = None
        if self.push or self.processes or tick_writers.needs_processes():
            processes = host_details.processes(
                self.manager, command_line=conf.get("PROCESS_COMMAND_LINE")
            )
        return TickContext(
            host=self.host,
            epoch=epoch,
            interval=self.interval,
            devices=devices,
            driver=driver,
            processes=processes,
            processes_recorded=self.processes,
        )

    def listen_for_xid(self, stopping: threading.Event) -> None:
        """Thread: queue each XID error for the next tick until ``stopping``; retry
        where NVML could not."""
        reported = False
        while not stopping.is_set():
            try:
                events = self.manager.listen_for_xid_events()
            except XidEventsUnavailableError as exc:
                if not reported:
                    logger.info("XID events are not recorded: %s", exc)
                    reported = True
                stopping.wait(XID_RETRY_S)
                continue
            logger.info("Listening for XID errors on GPU(s) %s", events.gpus)
            try:
                while not stopping.is_set():
                    xid = events.wait(XID_WAIT_MS)
                    if xid is not None:
                        logger.warning("XID %d on GPU %s", xid.xid, xid.gpu_index)
                        self.xid_queue.put(xid)
            except Exception as exc:  # NVML went away: register again when it is back
                logger.warning("Waiting for XID events failed: %s", exc)
                stopping.wait(XID_RETRY_S)
            finally:
                events.close()
