"""What the recorder hands the sub-apps' tick writers, and which writers there are.

A sub-app declares its writer in its ``plugins.SubApp`` (``tick_writer``, and
``tick_writer_processes`` when it needs the processes); the recorder calls every declared
writer inside the transaction that writes the tick's samples and events, so a tick is
written whole or not at all. The history app imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpu_monitor import plugins
from gpu_monitor.types import DriverInfo, GPUDevice, GPUProcessesResponse


@dataclass(frozen=True)
class TickContext:
    """What one tick of one host saw, read once by the recorder's sampling thread, as
    the core's dataclasses (a writer that stores JSON renders them with the core's
    serializers, as the API would).

    ``devices``: the GPUs of the tick's snapshot (``GET api/gpu/devices``); ``driver``:
    ``GET api/gpu/driver``'s, None without NVML; ``processes``: ``GET
    api/gpu/processes``'s, None unless the recorder records processes (``gpu_record
    --processes``: ``processes_recorded``) or a writer needs them. ``local``: the tick
    was sampled on this machine (False: a node pushed it, ``POST api/gpu/ingest``; its
    processes' pids are another machine's).
    """

    host: str
    epoch: int
    interval: int
    devices: list[GPUDevice]
    driver: DriverInfo | None
    processes: GPUProcessesResponse | None
    processes_recorded: bool = False
    local: bool = True


# ``write(context, using)``: ``using`` is the database alias of the tick's transaction.
TickWriter = Callable[[TickContext, str], None]


def needs_processes() -> bool:
    """Whether a declared writer needs the processes of every tick."""
    return any(needed for _writer, needed in plugins.tick_writers())


def registered() -> tuple[TickWriter, ...]:
    """The declared writers, in ``INSTALLED_APPS`` order."""
    return tuple(writer for writer, _needed in plugins.tick_writers())
