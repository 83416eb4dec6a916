"""Read-only DRF serializers, the single source of the JSON shape (API and command)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class GPUDeviceSerializer(serializers.Serializer[Any]):
    """One GPU (``gpu_monitor.types.GPUDevice``)."""

    index = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    total_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    free_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    used_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    temperature_c = serializers.IntegerField(read_only=True, allow_null=True)
    is_available = serializers.BooleanField(read_only=True)
    error_message = serializers.CharField(read_only=True, allow_null=True)
    field_errors = serializers.DictField(child=serializers.CharField(), read_only=True)
    uuid = serializers.CharField(read_only=True, allow_null=True)
    pci_bus_id = serializers.CharField(read_only=True, allow_null=True)
    power_draw_w = serializers.FloatField(read_only=True, allow_null=True)
    power_limit_w = serializers.FloatField(read_only=True, allow_null=True)
    fan_speed_percent = serializers.IntegerField(read_only=True, allow_null=True)
    memory_utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    performance_state = serializers.CharField(read_only=True, allow_null=True)
    sm_clock_mhz = serializers.IntegerField(read_only=True, allow_null=True)
    memory_clock_mhz = serializers.IntegerField(read_only=True, allow_null=True)


class GPUDevicesResponseSerializer(serializers.Serializer[Any]):
    """Every GPU and their count (``gpu_monitor.types.GPUDevicesResponse``)."""

    devices = GPUDeviceSerializer(many=True, read_only=True)
    count = serializers.IntegerField(read_only=True)


class DriverInfoSerializer(serializers.Serializer[Any]):
    """Driver, CUDA and NVML versions (``gpu_monitor.types.DriverInfo``)."""

    driver_version = serializers.CharField(read_only=True)
    cuda_driver_version = serializers.CharField(read_only=True)
    nvml_version = serializers.CharField(read_only=True)


class GPUStatusSerializer(serializers.Serializer[Any]):
    """Health summary (``gpu_monitor.types.GPUStatus``)."""

    cuda_available = serializers.BooleanField(read_only=True)
    device_count = serializers.IntegerField(read_only=True)
    error_message = serializers.CharField(read_only=True, allow_null=True)


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error body: ``{"detail": "..."}``."""

    detail = serializers.CharField(read_only=True)
