"""The fleet's part of each recorder tick: the host's row, replaced in one statement."""

from __future__ import annotations

from gpu_monitor.fleet.hosts import summary_columns
from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import moment
from gpu_monitor.history.tick_writers import TickContext

# Every column but the key: a tick replaces the whole row.
UPDATED = [f.name for f in HostState._meta.concrete_fields if f.name not in ("id", "host")]


def write_host_state(context: TickContext, using: str) -> None:
    """Insert or replace the host's row in one statement (an upsert: two recorders of
    one host never fail on the unique host), with the summary of its devices."""
    devices = context.devices["devices"]
    state = HostState(
        host=context.host,
        epoch=context.epoch,
        timestamp=moment(context.epoch),
        interval_seconds=context.interval,
        devices=devices,
        driver=context.driver,
        processes=context.processes if context.processes_recorded else None,
        **summary_columns(devices),
    )
    HostState.objects.using(using).bulk_create(
        [state], update_conflicts=True, unique_fields=["host"], update_fields=UPDATED
    )
