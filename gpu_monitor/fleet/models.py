"""The latest state of each recorded host: one row per host, replaced at each tick; and
which host each node's database role may write (PostgreSQL row-level security)."""

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
    # The devices summed up by the tick writer (gpu_monitor.fleet.writer.summary_columns),
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


class NodeRole(models.Model):
    """The host whose rows a node's PostgreSQL role may read and write, and no other's.

    On PostgreSQL, row-level security on every table a node writes (samples, rollups,
    events, host states, usage, holds) limits a role listed here, or any member of the
    group role ``gpu_monitor_node``, to the rows of its host
    (gpu_monitor.history.node_roles; docs/deployment.md, "A node's database role"). A
    member that is not listed sees and writes nothing. Other roles are not limited.

    The table's name is outside the tables a node is granted INSERT and UPDATE on
    (``gpu_monitor_(history|fleet|usage)_...``): a node cannot map itself to another
    host. Every role may read it (the policies read it as the querying role).
    """

    role = models.CharField(
        max_length=63, unique=True, help_text="The node's PostgreSQL role (login name)."
    )
    host = models.CharField(max_length=255, help_text="The host it records: its gpu_record --host.")

    class Meta:
        db_table = "gpu_monitor_node_role"
        ordering = ("role",)

    def __str__(self) -> str:
        return f"{self.role} -> {self.host}"


class HostToken(models.Model):
    """A node's token for ``POST api/gpu/ingest``: it writes the ticks of ``host`` only,
    and opens nothing else (gpu_monitor.fleet.tokens; ``manage.py gpu_host_token``).

    Only the token's SHA-256 is stored; ``key`` is its public id (the characters after
    ``gpumon_``), to tell tokens apart in lists. The table's name is outside the tables a
    node's database role is granted: a node cannot give itself a token.
    """

    host = models.CharField(max_length=255, db_index=True)
    key = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)  # hex SHA-256 of the token
    created = models.DateTimeField()
    last_used = models.DateTimeField(null=True)  # updated at most once a minute
    revoked = models.DateTimeField(null=True)

    class Meta:
        db_table = "gpu_monitor_host_token"
        ordering = ("host", "created", "id")

    def __str__(self) -> str:
        return f"{self.host} ({self.key})"
