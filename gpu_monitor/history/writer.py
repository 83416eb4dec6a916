"""The recorder's writer thread: the buffered ticks into the database, oldest first,
each in one transaction (a process killed mid-tick leaves no partial tick), then the
rollups and the retention.

While the database is unreachable, ticks wait in the buffer. A connection that worked
and that the server has ended since is replaced at once, within the write. Any other
database error is either an outage (retried at the next tick) or permanent (a missing
table, a value the column refuses): the recorder then stops and says what to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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
)
from django.db.backends.base.base import BaseDatabaseWrapper

from gpu_monitor.database import limited, missing_schema, named
from gpu_monitor.history import limits
from gpu_monitor.history.aggregate import roll_up
from gpu_monitor.history.buffer import Tick, TickBuffer
from gpu_monitor.history.models import ROLLUP_SECONDS
from gpu_monitor.history.recorded import Recorded, dropped_event, read_recorded
from gpu_monitor.history.retention import Retention
from gpu_monitor.history.store import write_tick

# The recorder's parts log as one logger, the recorder's (docs/history.md).
logger = logging.getLogger("gpu_monitor.history.recorder")

# The writer's own database connection (PostgreSQL): a server that does not answer a
# connection attempt, or a statement (a lock held elsewhere), costs at most this long.
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = limits.STATEMENT_TIMEOUT_S
# A connection that dies silently (a host powered off, a failover, a NAT entry gone) fails
# within KEEPALIVES_IDLE_S + KEEPALIVES_INTERVAL_S * KEEPALIVES_COUNT seconds when idle,
# and within TCP_USER_TIMEOUT_S of data left unacknowledged, not after the kernel's
# retransmissions (about 15 minutes). libpq ignores them on a Unix socket.
KEEPALIVES_IDLE_S = 10
KEEPALIVES_INTERVAL_S = 5
KEEPALIVES_COUNT = 3
TCP_USER_TIMEOUT_S = KEEPALIVES_IDLE_S + KEEPALIVES_INTERVAL_S * KEEPALIVES_COUNT
PERMANENT = (ProgrammingError, DataError, IntegrityError, NotSupportedError)
# SQLite reports a missing table or column as an OperationalError, like an outage.


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


class Writer:
    """Writes ``buffer``'s ticks of ``host`` to the database ``alias``; calls
    ``on_failure`` (the recorder's stop) on a permanent error."""

    def __init__(
        self,
        buffer: TickBuffer,
        *,
        host: str,
        alias: str,
        retention: Retention,
        on_failure: Callable[[], None],
    ) -> None:
        self.buffer = buffer
        self.host = host
        self.alias = alias
        self.retention = retention
        self.on_failure = on_failure
        self.wake = threading.Event()  # a tick is waiting
        self.finishing = threading.Event()  # sampling is over: the last try
        self.lock = threading.Lock()  # ``database_down``: outage() runs in both threads
        self.database_down = False
        self.failure: str | None = None  # a permanent database error, said to the user
        self.last_error = ""  # the reason of the last outage
        self.writing_since: float | None = None  # monotonic start of the write in flight
        self.writer_db: BaseDatabaseWrapper | None = None  # the writer thread's connection
        # The DB-API connection under ``db`` that completed the last write: one that fails
        # later was ended by the server (see ``connection_lost``).
        self.served: Any = None
        # What the database holds, read before the first write.
        self.recorded = Recorded()
        self.reconciled = False  # whether ``recorded`` and ``dirty_from`` were read
        self.dirty_from: int | None = None  # the first period with samples not rolled up

    @property
    def db(self) -> BaseDatabaseWrapper:
        """This thread's connection to the history database."""
        return connections[self.alias]

    def finish(self) -> None:
        """Sampling is over: write what is buffered once more, then end."""
        self.finishing.set()
        self.wake.set()

    def write_until_finished(self) -> None:
        """Thread: write whenever a tick waits, until the sampling is over, then try once
        more. Its own connection gives up on a connection attempt after
        CONNECT_TIMEOUT_S, on a silently dead TCP connection after TCP_USER_TIMEOUT_S or
        its keepalives (unless the project's OPTIONS set them), and on a statement after
        STATEMENT_TIMEOUT_S."""
        db = self.writer_db = self.db
        if db.vendor == "postgresql":
            # Named ``gpu_record <host>`` in pg_stat_activity (the nodes' connections tell
            # apart) unless the project's OPTIONS name it: a connection parameter, not a
            # session SET, as every limit here (a pooler in transaction mode).
            options = {
                **writer_options(),
                **named(db.settings_dict.get("OPTIONS"), f"gpu_record {self.host}"),
            }
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
            with limited(self.alias, STATEMENT_TIMEOUT_S):
                self.recorded, self.dirty_from = read_recorded(self.host, self.alias)
            self.reconciled = True
        epoch, written = None, 0
        while (tick := self.buffer.oldest()) is not None:
            self.write_tick(tick)
            epoch, written = tick.epoch, written + 1
        if epoch is not None:
            with limited(self.alias, STATEMENT_TIMEOUT_S):
                self.roll_up(epoch)
            self.retention.after_write(self.alias, self.host, epoch)
        return written

    def write_tick(self, tick: Tick) -> None:
        """One tick in one transaction; events already there (another recorder of the
        host wrote them) are skipped by the unique constraint, as samples are."""
        dropped = self.buffer.dropped_count()
        extra = []
        if dropped:
            extra.append(dropped_event(self.host, tick.epoch, dropped, self.buffer.capacity))
        with limited(self.alias, STATEMENT_TIMEOUT_S):
            events, after = write_tick(self.host, tick, self.recorded, self.alias, extra)
        self.recorded = after
        self.buffer.accept(tick, dropped)
        if dropped:
            logger.warning("%s", events[-1].message)
        period = tick.epoch // ROLLUP_SECONDS * ROLLUP_SECONDS
        if tick.samples and (self.dirty_from is None or period < self.dirty_from):
            self.dirty_from = period

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
            self.on_failure()
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
                self.buffer.capacity,
                reason,
            )
        else:
            logger.debug("Database still unreachable: %s", reason)
