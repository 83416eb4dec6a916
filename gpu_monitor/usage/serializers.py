"""Read-only serializers of the usage API, derived from ``gpu_monitor.usage.types``."""

from __future__ import annotations

from gpu_monitor.serializers import DataclassSerializer
from gpu_monitor.usage.types import IdleGPU, IdleGPUs, Notified, UsageReport, UsageRow


class UsageRowSerializer(DataclassSerializer):
    """One row of ``GET usage`` (``gpu_monitor.usage.types.UsageRow``)."""

    dataclass = UsageRow


class UsageReportSerializer(DataclassSerializer):
    """``GET usage`` (``gpu_monitor.usage.types.UsageReport``)."""

    dataclass = UsageReport
    total = UsageRowSerializer(read_only=True)


class NotifiedSerializer(DataclassSerializer):
    """How often an idle GPU's holder was told (``gpu_monitor.usage.types.Notified``)."""

    dataclass = Notified


class IdleGPUSerializer(DataclassSerializer):
    """One idle-held GPU (``gpu_monitor.usage.types.IdleGPU``)."""

    dataclass = IdleGPU
    notified = NotifiedSerializer(read_only=True, allow_null=True)


class IdleGPUsSerializer(DataclassSerializer):
    """``GET usage/idle`` (``gpu_monitor.usage.types.IdleGPUs``)."""

    dataclass = IdleGPUs
