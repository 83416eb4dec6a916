"""Read-only serializers of the fleet API, derived from ``gpu_monitor.fleet.types``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gpu_monitor.fleet.types import (
    HostDetail,
    HostProblem,
    HostProcesses,
    HostSummary,
)
from gpu_monitor.serializers import DataclassSerializer


class StoredListField(serializers.ListField):
    """Items stored as the node's API rendered them (devices, processes): given back
    as they are. The OpenAPI schema describes their items (``gpu_monitor.fleet.schema``)."""

    child = serializers.DictField()

    def to_representation(self, data: Any) -> Any:
        return data


class StoredDevicesField(StoredListField):
    """A host's devices, as its ``GET api/gpu/devices`` gave them."""


class StoredProcessesField(StoredListField):
    """A host's processes, as its ``GET api/gpu/processes`` gave them."""


class HostProblemSerializer(DataclassSerializer):
    """One problem of one GPU (``gpu_monitor.fleet.types.HostProblem``)."""

    dataclass = HostProblem


class HostSummarySerializer(DataclassSerializer):
    """One host of ``GET hosts`` (``gpu_monitor.fleet.types.HostSummary``)."""

    dataclass = HostSummary


class HostDetailSerializer(DataclassSerializer):
    """``GET hosts/<host>`` (``gpu_monitor.fleet.types.HostDetail``)."""

    dataclass = HostDetail
    devices = StoredDevicesField(read_only=True)


class HostProcessesSerializer(DataclassSerializer):
    """``GET hosts/<host>/processes`` (``gpu_monitor.fleet.types.HostProcesses``)."""

    dataclass = HostProcesses
    processes = StoredProcessesField(read_only=True)
