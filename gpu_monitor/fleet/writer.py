"""The fleet's part of each recorder tick: the host's row, replaced in one statement."""

from __future__ import annotations

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import moment
from gpu_monitor.history.tick_writers import TickContext

UPDATED = ("epoch", "timestamp", "interval_seconds", "devices", "driver", "processes")


def write_host_state(context: TickContext, using: str) -> None:
    """Insert or replace the host's row (an upsert: two recorders of one host, or a
    first tick racing another, never fail on the unique host). A tick older than the
    row (a buffered tick written after a newer one) still replaces it: ticks are
    written oldest first."""
    state = HostState(
        host=context.host,
        epoch=context.epoch,
        timestamp=moment(context.epoch),
        interval_seconds=context.interval,
        devices=context.devices["devices"],
        driver=context.driver,
        processes=context.processes,
    )
    HostState.objects.using(using).bulk_create(
        [state], update_conflicts=True, unique_fields=["host"], update_fields=UPDATED
    )
