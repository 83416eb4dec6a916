"""Writing ticks into the history: one tick of one host (``write_tick``: the recorder's
writer and the ingest endpoint write through it alike) and a batch of ticks a node
pushed (``write_pushed``, called by the fleet's ``POST api/gpu/ingest``).

A pushed batch is written in one transaction under ``database.limited`` and is
idempotent. The rule: a tick at or before the newest tick the database holds for its
host (its newest sample or event) is a duplicate, counted and not written: it was
written before (a node that sends again a body whose answer it never received), or the
host's state has moved on past it (its events and the fleet's row would go back in time).
The caller's ``lock`` (the fleet locks the host's token rows) makes two requests of one
host wait for each other, so that the second reads what the first wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from django.db.models import Max

from gpu_monitor.database import limited
from gpu_monitor.history import limits, tick_writers
from gpu_monitor.history.aggregate import roll_up
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import ROLLUP_SECONDS, Event, Sample
from gpu_monitor.history.recorded import Recorded, dropped_event, events_of, read_recorded

STATEMENT_TIMEOUT_S = limits.STATEMENT_TIMEOUT_S


class Pushed(Protocol):
    """What ``write_pushed`` reads of a decoded body (``wire.Batch``)."""

    @property
    def host(self) -> str: ...
    @property
    def dropped(self) -> int: ...
    @property
    def ticks(self) -> Sequence[Tick]: ...


@dataclass(frozen=True)
class Written:
    """How many ticks of a batch were written, and how many were duplicates."""

    written: int
    duplicates: int


def write_tick(
    host: str, tick: Tick, recorded: Recorded, using: str, extra: Iterable[Event] = ()
) -> tuple[list[Event], Recorded]:
    """Write ``tick``'s samples, the sub-apps' tick writers' rows and its events (those
    against ``recorded``, then ``extra``) in the caller's transaction on ``using``; the
    events, and the host's state once they are written. Events already there (another
    recorder of the host wrote them) are skipped by the unique constraint, as samples are."""
    events, after = events_of(host, tick, recorded)
    events += extra
    Sample.objects.using(using).bulk_create(tick.samples, ignore_conflicts=True)
    if tick.context is not None:
        for write in tick_writers.registered():
            write(tick.context, using)
    Event.objects.using(using).bulk_create(events, ignore_conflicts=True)
    return events, after


def period_of(epoch: int) -> int:
    return epoch // ROLLUP_SECONDS * ROLLUP_SECONDS


def newest_epoch(host: str, using: str) -> int | None:
    """The epoch of the newest sample or event of ``host``; None when it has neither."""
    found = [
        model.objects.using(using).filter(host=host).aggregate(newest=Max("epoch"))["newest"]
        for model in (Sample, Event)
    ]
    epochs = [epoch for epoch in found if epoch is not None]
    return max(epochs) if epochs else None


def write_pushed(batch: Pushed, using: str, lock: Callable[[], object] | None = None) -> Written:
    """Write the ticks of ``batch`` that are not duplicates (the module's rule), oldest
    first, in one transaction on ``using`` that starts with ``lock()``; then roll up the
    host's periods that are over. The batch's ``dropped`` ticks are one
    ``samples_dropped`` event at its first tick, written with it (a replayed body's first
    tick is a duplicate: its event was written the first time)."""
    host = batch.host
    ticks = sorted(batch.ticks, key=lambda tick: tick.epoch)
    written = 0
    with limited(using, STATEMENT_TIMEOUT_S):
        if lock is not None:
            lock()
        recorded, dirty_from = read_recorded(host, using)
        newest = newest_epoch(host, using)
        for place, tick in enumerate(ticks):
            if newest is not None and tick.epoch <= newest:
                continue
            extra = []
            if place == 0 and batch.dropped:
                extra.append(dropped_event(host, tick.epoch, batch.dropped, None, "the site"))
            _events, recorded = write_tick(host, tick, recorded, using, extra)
            newest, written = tick.epoch, written + 1
            if tick.samples and (dirty_from is None or period_of(tick.epoch) < dirty_from):
                dirty_from = period_of(tick.epoch)
        current = None if newest is None else period_of(newest)
        if written and dirty_from is not None and current is not None and dirty_from < current:
            roll_up(host, dirty_from, current, using=using)
    return Written(written, len(ticks) - written)
