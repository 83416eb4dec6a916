"""The lean serializers give exactly what DRF's generic path gives."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import pytest
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from gpu_monitor.management.commands.gpu_devices import devices_json
from gpu_monitor.manager import GPUManager
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDeviceSerializer,
    GPUDevicesResponseSerializer,
    GPUProcessesResponseSerializer,
    GPUProcessSerializer,
    GPUStatusSerializer,
    MIGDeviceSerializer,
)
from gpu_monitor.types import (
    DriverInfo,
    GPUDevice,
    GPUDevicesResponse,
    GPUProcess,
    GPUProcessesResponse,
    GPUStatus,
    MIGDevice,
)


@pytest.mark.parametrize("scenario", ["lost", "mig"])
def test_lean_path_equals_drf_generic_path(fake_nvml: ModuleType, scenario: str) -> None:
    fake_nvml.configure(gpus=3, scenario=scenario)
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
    assert [step[0] for step in plan] == list(GPUDeviceSerializer().fields)


@pytest.mark.parametrize(
    ("dataclass", "serializer"),
    [
        (GPUDevice, GPUDeviceSerializer),
        (GPUDevicesResponse, GPUDevicesResponseSerializer),
        (DriverInfo, DriverInfoSerializer),
        (GPUStatus, GPUStatusSerializer),
        (MIGDevice, MIGDeviceSerializer),
        (GPUProcess, GPUProcessSerializer),
        (GPUProcessesResponse, GPUProcessesResponseSerializer),
    ],
)
def test_dataclasses_mirror_serializers_field_for_field(dataclass: type, serializer: type) -> None:
    # The serializers are derived from the dataclasses; gpu_devices --json dumps the
    # dataclasses (to stay fast without DRF): nothing may be declared on one side only.
    assert [f.name for f in dataclasses.fields(dataclass)] == list(serializer().fields)


def test_command_json_equals_drf_rendering_with_unicode_and_separators(
    fake_nvml: ModuleType,
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")
    fake_nvml.STATE.gpus[0].name = "GPU «Ünïcode» \u2028 line"
    devices = GPUManager().get_devices()

    drf = JSONRenderer().render(
        GPUDevicesResponseSerializer(GPUDevicesResponse(devices, len(devices))).data
    )

    assert devices_json(devices).encode() == drf


def test_processes_lean_path_equals_drf_generic_path(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    processes, errors = GPUManager().get_processes()
    response = GPUProcessesResponse(processes, len(processes), errors)

    lean = GPUProcessesResponseSerializer(response).data
    generic = serializers.Serializer.to_representation(
        GPUProcessesResponseSerializer(response), response
    )

    assert lean == generic
    assert lean["count"] == 3


class Text(str):
    """A str subclass: DRF's CharField gives a plain str for it."""


@pytest.mark.parametrize(
    "values",
    [
        {"command_line": ["python", "train.py"], "username": "alice"},
        {"command_line": ["python", None]},
        {"command_line": ["python", 3]},  # DRF gives "3"
        {"command_line": []},
        {"field_errors": {"name": 7}},  # DRF gives "7"
        {"field_errors": {3: "why"}},  # DRF gives the key "3"
        {"field_errors": {"name": None}},
        {"used_memory_mb": True},  # DRF gives 1
        {"used_memory_mb": 2.0},  # DRF gives 2
        {"name": Text("python")},
    ],
    ids=repr,
)
def test_lean_path_equals_drf_generic_path_for_any_value(values: dict[str, object]) -> None:
    process = dataclasses.replace(
        GPUProcess(0, "GPU-x", 4242, "compute", field_errors={"mig_uuid": "n/a"}), **values
    )
    serializer = GPUProcessSerializer(process)

    lean = serializer.data
    generic = serializers.Serializer.to_representation(serializer, process)

    assert lean == generic
    assert [type(v) for v in lean.values()] == [type(v) for v in generic.values()]
    assert JSONRenderer().render(lean) == JSONRenderer().render(generic)


def test_lean_path_copies_lists_and_dicts_as_drf_does() -> None:
    process = GPUProcess(0, None, 1, "compute", command_line=["a"], field_errors={"b": "c"})

    data = GPUProcessSerializer(process).data

    assert data["command_line"] is not process.command_line
    assert data["field_errors"] is not process.field_errors
