"""The registry through which sub-apps add their part to each tick of ``gpu_record``.

A sub-app registers a writer in its ``AppConfig.ready()``; the recorder calls every
registered writer inside the transaction that writes the tick's samples and events, so
a tick is written whole or not at all. The history app imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TickContext:
    """What one tick of one host saw, read once by the recorder's sampling thread.

    ``devices`` is the body of ``GET api/gpu/devices`` (``{"devices": [...], "count"}``)
    as this host renders it; ``driver`` that of ``GET api/gpu/driver``, None without
    NVML; ``processes`` that of ``GET api/gpu/processes``, None unless the recorder
    records processes (``gpu_record --processes``).
    """

    host: str
    epoch: int
    interval: int
    devices: dict[str, Any]
    driver: dict[str, Any] | None
    processes: dict[str, Any] | None
    processes_recorded: bool = False


# ``write(context, using)``: ``using`` is the database alias of the tick's transaction.
TickWriter = Callable[[TickContext, str], None]

_writers: list[TickWriter] = []
_needing_processes: list[TickWriter] = []


def register(writer: TickWriter, *, processes: bool = False) -> None:
    """Add ``writer`` (once: ``ready()`` may run more than once). ``processes``: the
    writer needs the tick's processes, so the recorder reads them at every tick."""
    if writer not in _writers:
        _writers.append(writer)
    if processes and writer not in _needing_processes:
        _needing_processes.append(writer)


def needs_processes() -> bool:
    """Whether a registered writer needs the processes of every tick."""
    return bool(_needing_processes)


def registered() -> tuple[TickWriter, ...]:
    """The writers, in the order they registered."""
    return tuple(_writers)
