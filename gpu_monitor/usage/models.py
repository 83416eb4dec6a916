"""Usage per host, GPU, user and five-minute period, and who holds each GPU now."""

from __future__ import annotations

from typing import overload

from django.db import models
from django.db.models import F
from django.db.models.expressions import CombinedExpression

PERIOD_SECONDS = 300
MAX_USER_LENGTH = 255  # a longer user name is cut to this when recorded
# A hold whose latest tick is more than this many intervals old is over (the recorder
# was down): the writer starts a new one, and ``GET usage/idle`` no longer lists it.
GAP_INTERVALS = 3


@overload
def live_since(now: int, interval: int) -> int: ...
@overload
def live_since(now: int, interval: F) -> CombinedExpression: ...
def live_since(now: int, interval: int | F) -> int | CombinedExpression:
    """The oldest last tick of a hold that still holds at ``now``: ``GAP_INTERVALS``
    intervals before it (a last tick exactly that old is in). The one rule of the tick
    writer (the tick's interval) and of ``idle_now`` (``F("interval_seconds")``, the
    hold's own)."""
    return now - GAP_INTERVALS * interval


class Usage(models.Model):
    """What one user's processes did with one GPU of one host in one five-minute period,
    added to at each tick of ``gpu_record`` in which the user had a process on the GPU.

    Every duration is in seconds and counts each tick's interval once (the tick at
    ``epoch`` counts in the period that holds ``epoch``): a tick the recorder missed adds
    nothing. ``utilization_sum`` is the GPU's utilisation (percent) times the tick's
    interval, summed over the ticks that read it, and ``utilization_seconds`` those
    ticks' intervals: ``utilization_sum / utilization_seconds`` is the mean utilisation
    while held, exact when the interval changes.
    """

    host = models.CharField(max_length=255)
    gpu_uuid = models.CharField(max_length=96)
    gpu_index = models.PositiveSmallIntegerField()  # the latest in the period
    user = models.CharField(max_length=MAX_USER_LENGTH)
    period = models.BigIntegerField()  # Unix seconds, a multiple of PERIOD_SECONDS
    seconds_held = models.BigIntegerField(default=0)
    idle_seconds = models.BigIntegerField(default=0)  # utilisation <= USAGE_IDLE_PERCENT
    shared_seconds = models.BigIntegerField(default=0)  # another user on the GPU too
    utilization_sum = models.BigIntegerField(default=0)  # percent x seconds
    utilization_seconds = models.BigIntegerField(default=0)  # held, utilisation known
    max_memory_mb = models.BigIntegerField(default=0)  # the user's processes, summed
    memory_mib_seconds = models.BigIntegerField(default=0)
    first_epoch = models.BigIntegerField()  # the period's first and last tick held
    last_epoch = models.BigIntegerField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["host", "gpu_uuid", "user", "period"], name="gpu_usage_one_row"
            ),
        )
        # The report: a window of periods, for everyone, one host or one user.
        indexes = (
            models.Index(fields=["period"], name="gpu_usage_period"),
            models.Index(fields=["host", "period"], name="gpu_usage_host_period"),
            models.Index(fields=["user", "period"], name="gpu_usage_user_period"),
        )
        ordering = ("-period", "host", "gpu_index", "user")

    def __str__(self) -> str:
        return f"{self.user} on {self.host} GPU {self.gpu_index} from {self.period}"


class Hold(models.Model):
    """A user holding a GPU: processes on it at every tick since ``held_since``.

    ``held_since`` and ``idle_since`` are where the first tick of the hold (of its idle
    run) begins, its epoch less its interval; ``idle_since`` is NULL when the latest
    sample was not idle. ``idle_event_sent``: the ``idle_held`` event of this idle run
    was written, so its end is written too.

    ``ended_epoch`` is NULL while the hold lasts, and the tick that found the user gone
    once it ended: the nodes' recorders write with a role that cannot delete
    (docs/deployment.md), so a hold ends by an UPDATE, a user who comes back starts a
    new hold in the same row, and ``gpu_history_maintain`` deletes the ended rows.
    """

    host = models.CharField(max_length=255)
    gpu_uuid = models.CharField(max_length=96)
    gpu_index = models.PositiveSmallIntegerField()
    user = models.CharField(max_length=MAX_USER_LENGTH)
    held_since = models.BigIntegerField()
    idle_since = models.BigIntegerField(null=True)
    last_epoch = models.BigIntegerField()
    interval_seconds = models.PositiveIntegerField()
    memory_mb = models.BigIntegerField(default=0)
    idle_event_sent = models.BooleanField(default=False)
    ended_epoch = models.BigIntegerField(null=True)  # NULL: held now

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["host", "gpu_uuid", "user"], name="gpu_usage_one_hold"),
        )
        ordering = ("host", "gpu_index", "user")

    def __str__(self) -> str:
        return f"{self.user} holds {self.host} GPU {self.gpu_index}"
