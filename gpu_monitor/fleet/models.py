"""The latest state of each recorded host: one row per host, replaced at each tick."""

from __future__ import annotations

from django.db import models


class HostState(models.Model):
    """What ``gpu_record --host <host>`` saw at its last tick, as the node's own API
    renders it: ``devices`` is the list of ``GET api/gpu/devices``, ``driver`` the body
    of ``GET api/gpu/driver`` (null without NVML), ``processes`` that of ``GET
    api/gpu/processes`` (null unless the recorder runs with ``--processes``)."""

    host = models.CharField(max_length=255, unique=True)
    epoch = models.BigIntegerField()  # the tick's Unix seconds
    timestamp = models.DateTimeField()  # the same moment, for the admin
    interval_seconds = models.PositiveIntegerField()
    devices = models.JSONField()
    driver = models.JSONField(null=True)
    processes = models.JSONField(null=True)
    # The devices summed up by the tick writer (gpu_monitor.fleet.hosts.summary_columns),
    # so that the list of hosts reads these, never the devices.
    gpu_count = models.PositiveIntegerField(default=0)
    utilization_percent = models.FloatField(null=True)  # mean over the GPUs reporting it
    used_memory_mb = models.BigIntegerField(null=True)
    total_memory_mb = models.BigIntegerField(null=True)
    max_temperature_c = models.IntegerField(null=True)
    problems = models.JSONField(default=list)  # [{"gpu_index", "kind", "message"}]
    problem_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("host",)

    def __str__(self) -> str:
        return f"{self.host} at {self.timestamp:%Y-%m-%d %H:%M:%S}"
