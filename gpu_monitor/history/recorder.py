"""The recorder behind ``manage.py gpu_record``: a sample per GPU per tick, and events.

A small service that runs the recorder's parts, each in its module:

- ``sampler``: one snapshot through the manager per tick (the sampling thread, which
  never touches the database), and the XID listener (a thread of its own);
- ``buffer``: the ticks between the two threads, at most ``HISTORY_BUFFER_TICKS``
  (beyond that the oldest are dropped and counted);
- ``writer``: the writer thread, its connection, reconnects, error classes and events
  (``recorded``: worked out against what the database last recorded for the host);
- ``retention``: old rows deleted, the path ``gpu_history_maintain`` shares;
- ``push`` (``gpu_record --push``): the pusher in the writer's place, which posts the
  ticks to the site's ``api/gpu/ingest`` (``wire``: the body) and touches no database.

All of it goes to the database that the project's router picks for the history models,
or to the site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import router

from gpu_monitor.history import push as pushing
from gpu_monitor.history.buffer import Tick, TickBuffer
from gpu_monitor.history.models import Sample
from gpu_monitor.history.push import Pusher, Site
from gpu_monitor.history.retention import Retention
from gpu_monitor.history.sampler import Sampler
from gpu_monitor.history.writer import CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_S, Writer
from gpu_monitor.manager import GPUManager

STALLED_AFTER_S = 10.0  # a write that has not returned by then: the database is not answering
# After stop(): time left to the writer, then leave whatever it does. Less than the 1 s
# promised for SIGTERM, since the interpreter's own exit follows.
STOP_WITHIN_S = 0.4
ONCE_WITHIN_S = CONNECT_TIMEOUT_S + STATEMENT_TIMEOUT_S  # --once: time for its one write


class Recorder:
    """Records the GPUs of this host every ``interval`` seconds until ``stop()``, into
    the database, or to ``push``'s site (then ``retention_s`` must be None: the site's)."""

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
        push: Site | None = None,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.host = host
        self.sampler = Sampler(
            manager, host=host, interval=interval, processes=processes, push=push is not None
        )
        self.retention = Retention(retention_s)  # None: never delete (a node)
        self.writer: Writer | Pusher
        if push is None:
            self.buffer = TickBuffer(buffer_ticks)
            self.writer = Writer(
                self.buffer,
                host=host,
                alias=router.db_for_write(Sample),
                retention=self.retention,
                on_failure=self.stop,
            )
            self.once_within_s = ONCE_WITHIN_S
        else:
            if retention_s is not None:
                raise ValueError("a recorder that pushes keeps no retention: the site does")
            self.buffer = TickBuffer(buffer_ticks, target="the site")
            self.writer = Pusher(
                self.buffer,
                host=host,
                interval=interval,
                processes_recorded=processes,
                site=push,
                on_failure=self.stop,
            )
            self.once_within_s = pushing.ONCE_WITHIN_S
        # Set by stop() (a signal) or a permanent error: sampling ends, the writer has
        # until ``stop_requested + STOP_WITHIN_S``.
        self.stopping = threading.Event()
        self.stop_requested: float | None = None
        self.last_taken: Tick | None = None  # the last snapshot read (gpu_record --once)

    # What gpu_record reads once run() returns.

    @property
    def target(self) -> str:
        """Where the ticks go, as the messages name it: the database, or the site."""
        return self.buffer.target

    @property
    def failure(self) -> str | None:
        """A permanent database error (or the site's refusal), said to the user; None:
        none."""
        return self.writer.failure

    @property
    def last_error(self) -> str:
        """The reason of the last outage."""
        return self.writer.last_error

    @property
    def writing_since(self) -> float | None:
        """The monotonic start of the write in flight; None: none."""
        return self.writer.writing_since

    def unwritten(self) -> int:
        return len(self.buffer)

    def run(self, once: bool = False) -> None:
        """Tick on wall-clock multiples of the interval until stopped (or once, stamped
        with the second it reads); the writer thread writes. Returns within
        STOP_WITHIN_S of ``stop()`` whatever the database (or site) does: what is left is
        ``unwritten()``."""
        writer = threading.Thread(
            target=self.writer.write_until_finished, name="gpu-write", daemon=True
        )
        listener = None
        if not once:
            listener = threading.Thread(
                target=self.sampler.listen_for_xid,
                args=(self.stopping,),
                name="gpu-xid",
                daemon=True,
            )
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
            self.writer.finish()
            deadline = time.monotonic() + (self.once_within_s if once else STOP_WITHIN_S)
            while writer.is_alive():
                if self.stop_requested is not None:
                    deadline = min(deadline, self.stop_requested + STOP_WITHIN_S)
                if time.monotonic() >= deadline:
                    break
                writer.join(0.02)
            if listener is not None:
                listener.join(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler)."""
        if self.stop_requested is None:
            self.stop_requested = time.monotonic()
        self.stopping.set()

    def tick(self, epoch: int) -> None:
        """One tick in this thread: read a snapshot, then write what is buffered."""
        self.take(epoch)
        self.writer.write()

    def take(self, epoch: int) -> None:
        """Read one snapshot into the buffer (which drops the oldest tick when full)."""
        self.last_taken = self.sampler.snapshot(epoch)
        self.buffer.add(self.last_taken)
        self.writer.wake.set()

    def watch_writer(self) -> None:
        """Say so (once) when a write has not returned for STALLED_AFTER_S: a database
        that does not answer at all (a frozen server) raises no error to report; nor
        does a site that has not answered yet."""
        since = self.writer.writing_since
        if since is not None and time.monotonic() - since > STALLED_AFTER_S:
            self.writer.outage(f"no answer for {time.monotonic() - since:.0f} s")
