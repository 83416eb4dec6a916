"""Read-only serializers of the usage API, derived from ``gpu_monitor.usage.types``."""

from __future__ import annotations

from gpu_monitor.serializers import DataclassSerializer
from gpu_monitor.usage.types import IdleGPU, IdleGPUs, UsageReport, UsageRow


class UsageRowSerializer(DataclassSerializer):
    """One row of ``GET usage`` (``gpu_monitor.usage.types.UsageRow``)."""

    dataclass = UsageRow


class UsageReportSerializer(DataclassSerializer):
    """``GET usage`` (``gpu_monitor.usage.types.UsageReport``)."""

    dataclass = UsageReport
    total = UsageRowSerializer(read_only=True)


class IdleGPUSerializer(DataclassSerializer):
    """One idle-held GPU (``gpu_monitor.usage.types.IdleGPU``)."""

    dataclass = IdleGPU


class IdleGPUsSerializer(DataclassSerializer):
    """``GET usage/idle`` (``gpu_monitor.usage.types.IdleGPUs``)."""

    dataclass = IdleGPUs
