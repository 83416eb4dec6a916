"""A sample per GPU per tick, and the events between them."""

from __future__ import annotations

from django.db import models
from django.db.models import F, IntegerField, Value
from django.db.models.functions import Coalesce


def unset(name: str) -> Coalesce:
    """A nullable column with NULL as -1: NULLs are distinct in a unique index (SQLite,
    PostgreSQL before 15), so a constraint over the raw column lets duplicates in."""
    return Coalesce(name, Value(-1), output_field=IntegerField())


class Sample(models.Model):
    """One GPU at one tick of ``gpu_record`` on one host.

    ``epoch`` (Unix seconds of the tick) is what queries filter and group on: integer
    division buckets it the same way on SQLite and PostgreSQL; ``timestamp`` is the same
    moment as a date for the admin. One sample per (host, GPU, tick): a unique constraint.
    """

    host = models.CharField(max_length=255)
    gpu_uuid = models.CharField(max_length=96)
    gpu_index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=96, blank=True)
    epoch = models.BigIntegerField()
    timestamp = models.DateTimeField()
    utilization_percent = models.SmallIntegerField(null=True)
    used_memory_mb = models.IntegerField(null=True)
    total_memory_mb = models.IntegerField(null=True)
    temperature_c = models.SmallIntegerField(null=True)
    power_draw_w = models.FloatField(null=True)
    sm_clock_mhz = models.IntegerField(null=True)
    ecc_errors_uncorrected_volatile = models.BigIntegerField(null=True)
    remapped_rows_pending = models.BooleanField(null=True)
    # Comma-separated names; "" is "none active", NULL "not known" (as in the API).
    clocks_event_reasons = models.CharField(max_length=255, null=True)  # noqa: DJ001

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["host", "gpu_uuid", "epoch"], name="gpu_history_one_sample_per_tick"
            ),
        )
        # Every query names the host: one GPU (the unique index) or all of them (this).
        # The admin lists the newest first, filters by host and GPU, drills down by date.
        indexes = (
            models.Index(fields=["host", "epoch"], name="gpu_history_sample_host"),
            # One GPU by index (history?gpu=3, a GPU that is gone): an index seek.
            models.Index(fields=["host", "gpu_index", "epoch"], name="gpu_history_sample_gpu"),
            models.Index(fields=["timestamp"], name="gpu_history_sample_time"),
            models.Index(fields=["host", "timestamp"], name="gpu_history_sample_host_time"),
            models.Index(fields=["gpu_index", "timestamp"], name="gpu_history_sample_gpu_time"),
        )
        ordering = ("-epoch",)

    def __str__(self) -> str:
        return f"{self.host} GPU {self.gpu_index} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class Rollup(models.Model):
    """The samples of one GPU over one ``ROLLUP_SECONDS`` period, summed up by
    ``gpu_record`` once the period is over, so that days of history are read from a few
    thousand rows instead of hundreds of thousands. Sums and counts (not averages) keep
    the averages of larger buckets exact."""

    host = models.CharField(max_length=255)
    gpu_uuid = models.CharField(max_length=96)
    gpu_index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=96, blank=True)
    epoch = models.BigIntegerField()  # the period's start, a multiple of ROLLUP_SECONDS
    utilization_sum = models.BigIntegerField(default=0)
    utilization_count = models.IntegerField(default=0)
    utilization_max = models.SmallIntegerField(null=True)
    used_memory_max = models.IntegerField(null=True)
    total_memory_max = models.IntegerField(null=True)
    temperature_max = models.SmallIntegerField(null=True)
    power_sum = models.FloatField(default=0.0)
    power_count = models.IntegerField(default=0)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["host", "gpu_uuid", "epoch"], name="gpu_history_one_rollup_per_period"
            ),
        )
        indexes = (models.Index(fields=["host", "epoch"], name="gpu_history_rollup_host"),)

    def __str__(self) -> str:
        return f"{self.host} GPU {self.gpu_index} from {self.epoch}"


ROLLUP_SECONDS = 300


class Event(models.Model):
    """Something that happened to a GPU or to NVML on a host."""

    class Kind(models.TextChoices):
        XID = "xid", "XID error"
        GPU_LOST = "gpu_lost", "GPU lost"
        GPU_RECOVERED = "gpu_recovered", "GPU recovered"
        NVML_UNAVAILABLE = "nvml_unavailable", "NVML unavailable"
        NVML_AVAILABLE = "nvml_available", "NVML available"
        SAMPLES_DROPPED = "samples_dropped", "Samples dropped"
        IDLE_HELD = "idle_held", "GPU held idle"  # gpu_monitor.usage
        IDLE_HELD_ENDED = "idle_held_ended", "GPU no longer held idle"

    host = models.CharField(max_length=255)
    gpu_uuid = models.CharField(max_length=96, blank=True)  # blank: the whole host
    gpu_index = models.PositiveSmallIntegerField(null=True)
    epoch = models.BigIntegerField()
    timestamp = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    xid = models.IntegerField(null=True)
    message = models.TextField(blank=True)

    class Meta:
        constraints = (
            # Two recorders of one host record each event once (written ignoring conflicts).
            models.UniqueConstraint(
                F("host"),
                F("kind"),
                F("epoch"),
                unset("gpu_index"),
                unset("xid"),
                name="gpu_history_one_event",
            ),
        )
        # The API: per host or GPU by time. The admin: newest first, by kind, host, GPU, date.
        indexes = (
            models.Index(fields=["host", "epoch"], name="gpu_history_event_host"),
            models.Index(fields=["host", "gpu_uuid", "epoch"], name="gpu_history_event_gpu"),
            models.Index(fields=["timestamp"], name="gpu_history_event_time"),
            models.Index(fields=["kind", "timestamp"], name="gpu_history_event_kind_time"),
            models.Index(fields=["host", "timestamp"], name="gpu_history_event_host_time"),
            models.Index(fields=["gpu_index", "timestamp"], name="gpu_history_event_gpu_time"),
        )
        ordering = ("-epoch", "-id")

    def __str__(self) -> str:
        return f"{self.host} {self.kind} at {self.timestamp:%Y-%m-%d %H:%M:%S}"
