"""The lean serializers give exactly what DRF's generic path gives."""

from __future__ import annotations

from types import ModuleType

from rest_framework import serializers

from gpu_monitor.manager import GPUManager
from gpu_monitor.serializers import GPUDeviceSerializer, GPUDevicesResponseSerializer
from gpu_monitor.types import GPUDevicesResponse


def test_lean_path_equals_drf_generic_path(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3, scenario="lost")
    fake_nvml.STATE.gpus[0].errors["temperature"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    devices = GPUManager().get_devices()
    response = GPUDevicesResponse(devices, len(devices))

    lean = GPUDevicesResponseSerializer(response).data
    generic = serializers.Serializer.to_representation(
        GPUDevicesResponseSerializer(response), response
    )

    assert lean == generic
    assert [set(d) for d in lean["devices"]] == [set(GPUDeviceSerializer().fields)] * 3


def test_fields_are_bound_once_per_class(fake_nvml: ModuleType) -> None:
    devices = GPUManager().get_devices()
    first = GPUDeviceSerializer(devices[0]).data
    plan = GPUDeviceSerializer._representation_plan()

    second = GPUDeviceSerializer(devices[1]).data

    assert (first["index"], second["index"]) == (0, 1)
    assert GPUDeviceSerializer._representation_plan() is plan
    assert [name for name, _, _ in plan] == list(GPUDeviceSerializer().fields)
