"""The recorder's tick buffer, shared by its sampling and its writer thread.

Shaped like Telegraf's output buffer (``models/buffer.go``): the sampler ``add``s each
tick; the writer takes the ``oldest``, writes it and ``accept``s it (the pusher takes
the ``oldest_ticks`` and accepts them all). A tick whose write fails stays where it is
(Telegraf's reject is a no-op here: nothing was taken out), so the next try starts from
it. Past ``capacity`` ticks the oldest is dropped and counted
(``dropped``) until a write records the count as a ``samples_dropped`` event.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from gpu_monitor.history.models import Event, Sample
from gpu_monitor.history.tick_writers import TickContext

# The recorder's parts log as one logger, the recorder's (docs/history.md).
logger = logging.getLogger("gpu_monitor.history.recorder")


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


class TickBuffer:
    """At most ``capacity`` ticks, oldest first, under one lock; ``target``: where they
    are written (the database, or the site a node pushes to), as the log names it."""

    def __init__(self, capacity: int, target: str = "the database") -> None:
        if capacity < 1:
            raise ValueError(f"buffer_ticks must be at least 1, not {capacity}")
        self.capacity = capacity
        self.target = target
        self.lock = threading.Lock()
        self.ticks: deque[Tick] = deque()
        self.dropped = 0  # ticks dropped from a full buffer, not yet recorded

    def __len__(self) -> int:
        with self.lock:
            return len(self.ticks)

    def add(self, tick: Tick) -> None:
        """Append ``tick``, dropping the oldest while there are more than ``capacity``."""
        with self.lock:
            self.ticks.append(tick)
            while len(self.ticks) > self.capacity:
                self.ticks.popleft()
                self.dropped += 1
                log = logger.warning if self.dropped == 1 else logger.debug
                log(
                    "History buffer full (%d ticks): dropping the oldest tick while %s "
                    "is unreachable",
                    self.capacity,
                    self.target,
                )

    def oldest(self) -> Tick | None:
        with self.lock:
            return self.ticks[0] if self.ticks else None

    def oldest_ticks(self, count: int) -> list[Tick]:
        """The ``count`` oldest ticks (fewer when fewer wait), oldest first."""
        with self.lock:
            return list(itertools.islice(self.ticks, count))

    def dropped_count(self) -> int:
        with self.lock:
            return self.dropped

    def accept(self, tick: Tick, dropped_recorded: int) -> None:
        """``tick`` is written, with an event for ``dropped_recorded`` dropped ticks:
        take it out (unless a full buffer dropped it meanwhile: then it counts as
        written, not as dropped)."""
        self.accept_all([tick], dropped_recorded)

    def accept_all(self, ticks: list[Tick], dropped_recorded: int) -> None:
        """``ticks``, the oldest, are written with an event for ``dropped_recorded``
        dropped ticks: take them out (those a full buffer dropped meanwhile count as
        written, not as dropped)."""
        with self.lock:
            for tick in ticks:
                if self.ticks and self.ticks[0] is tick:
                    self.ticks.popleft()
                else:  # dropped from a full buffer while it was being written
                    self.dropped -= 1
            self.dropped -= dropped_recorded
