"""The recorder's events, worked out at write time against what the database last
recorded for the host (read before the first write), so that a restart neither repeats
a ``gpu_lost`` nor leaves an old ``nvml_unavailable`` standing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Min, OuterRef, Subquery

from gpu_monitor.history.aggregate import rolled_up_until
from gpu_monitor.history.models import ROLLUP_SECONDS, Event, Sample
from gpu_monitor.params import moment

if TYPE_CHECKING:
    from gpu_monitor.history.buffer import Tick


@dataclass
class Recorded:
    """The state of a host as its events in the database tell it."""

    nvml_available: bool = True  # a host with no NVML event yet: nothing to announce
    lost: dict[int, str] = field(default_factory=dict)  # index: uuid of each GPU lost


def event(
    host: str,
    epoch: int,
    kind: str,
    index: int | None = None,
    *,
    uuid: str = "",
    xid: int | None = None,
    message: str = "",
) -> Event:
    return Event(
        host=host,
        gpu_uuid=uuid,
        gpu_index=index,
        epoch=epoch,
        timestamp=moment(epoch),
        kind=kind,
        xid=xid,
        message=message,
    )


def read_recorded(host: str, alias: str) -> tuple[Recorded, int | None]:
    """The host's state as its last events say, and where rolling up resumes: after
    the host's last rollup, or at its first sample when it has none."""
    events = Event.objects.using(alias).filter(host=host)
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
    resume = rolled_up_until(host, using=alias)
    if resume is None:
        samples = Sample.objects.using(alias).filter(host=host)
        first = samples.aggregate(first=Min("epoch"))["first"]
        if first is not None:
            resume = first // ROLLUP_SECONDS * ROLLUP_SECONDS
    return recorded, resume


def events_of(host: str, tick: Tick, recorded: Recorded) -> tuple[list[Event], Recorded]:
    """The tick's events against ``recorded``, and the state once they are written."""
    epoch, events = tick.epoch, []
    after = Recorded(recorded.nvml_available, dict(recorded.lost))
    available = tick.nvml_error is None
    if available != recorded.nvml_available:
        kind = Event.Kind.NVML_AVAILABLE if available else Event.Kind.NVML_UNAVAILABLE
        events.append(event(host, epoch, kind, message=tick.nvml_error or ""))
        after.nvml_available = available
    for index, (uuid, message) in sorted(tick.lost.items()):
        if index not in recorded.lost:
            events.append(
                event(host, epoch, Event.Kind.GPU_LOST, index, uuid=uuid, message=message)
            )
            after.lost[index] = uuid
    for index, uuid in sorted(tick.found.items()):
        if index in recorded.lost:
            events.append(event(host, epoch, Event.Kind.GPU_RECOVERED, index, uuid=uuid))
            del after.lost[index]
    return events + tick.xids, after


def dropped_event(
    host: str, epoch: int, dropped: int, capacity: int | None, unreachable: str = "the database"
) -> Event:
    """``dropped`` ticks a full buffer of ``capacity`` ticks (None: a node's, pushed)
    dropped while ``unreachable`` was."""
    buffer = "the node's buffer" if capacity is None else f"the buffer of {capacity} tick(s)"
    message = f"{dropped} tick(s) dropped: {unreachable} was unreachable for longer than {buffer}"
    return event(host, epoch, Event.Kind.SAMPLES_DROPPED, message=message)
