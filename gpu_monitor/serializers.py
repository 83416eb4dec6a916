"""Read-only DRF serializers, the single source of the JSON shape (API and command)."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.fields import Field


class ReadOnlySerializer(serializers.Serializer[Any]):
    """A read-only serializer with a lean ``to_representation``.

    DRF deep-copies every declared field for each serializer instance, and looks each
    attribute up through its generic source machinery: on a list of 8 GPUs that was
    most of a request's time. Here the bound fields are made once per class and each
    value goes straight to its field's ``to_representation``. The declared fields stay
    the one source of the JSON shape (and of the OpenAPI schema).
    """

    _plan: ClassVar[list[PlanStep] | None] = None

    @classmethod
    def _representation_plan(cls) -> list[PlanStep]:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            plan = [
                (
                    name,
                    field.source_attrs[0] if len(field.source_attrs) == 1 else None,
                    field,
                    UNCHANGED.get(type(field)),
                )
                for name, field in cls().fields.items()
                if not field.write_only
            ]
            cls._plan = plan
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        representation: dict[str, Any] = {}
        for name, attribute, field, unchanged in self._representation_plan():
            value = getattr(instance, attribute) if attribute else field.get_attribute(instance)
            if value is None or type(value) is unchanged:
                representation[name] = value  # what to_representation would give back
            else:
                representation[name] = field.to_representation(value)
        return representation


PlanStep = tuple[str, "str | None", "Field[Any, Any, Any, Any]", "type | None"]
# A value of exactly this type is its own representation in this field (int(v), str(v),
# float(v), the bool, the choice's own string): skipping the call changes nothing, and
# a list of 256 processes serializes about twice as fast.
UNCHANGED: dict[type, type] = {
    serializers.IntegerField: int,
    serializers.CharField: str,
    serializers.FloatField: float,
    serializers.BooleanField: bool,
    serializers.ChoiceField: str,
}


class MIGDeviceSerializer(ReadOnlySerializer):
    """One MIG device of a GPU (``gpu_monitor.types.MIGDevice``)."""

    uuid = serializers.CharField(read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True, allow_null=True)
    gpu_instance_id = serializers.IntegerField(read_only=True, allow_null=True)
    compute_instance_id = serializers.IntegerField(read_only=True, allow_null=True)
    total_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    used_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    free_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    field_errors = serializers.DictField(child=serializers.CharField(), read_only=True)


class GPUDeviceSerializer(ReadOnlySerializer):
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
    ecc_mode = serializers.ChoiceField(["enabled", "disabled"], read_only=True, allow_null=True)
    ecc_errors_corrected_volatile = serializers.IntegerField(read_only=True, allow_null=True)
    ecc_errors_uncorrected_volatile = serializers.IntegerField(read_only=True, allow_null=True)
    ecc_errors_corrected_aggregate = serializers.IntegerField(read_only=True, allow_null=True)
    ecc_errors_uncorrected_aggregate = serializers.IntegerField(read_only=True, allow_null=True)
    remapped_rows_correctable = serializers.IntegerField(read_only=True, allow_null=True)
    remapped_rows_uncorrectable = serializers.IntegerField(read_only=True, allow_null=True)
    remapped_rows_pending = serializers.BooleanField(read_only=True, allow_null=True)
    remapped_rows_failure = serializers.BooleanField(read_only=True, allow_null=True)
    retired_pages_pending = serializers.BooleanField(read_only=True, allow_null=True)
    clocks_event_reasons = serializers.ListField(
        child=serializers.CharField(), read_only=True, allow_null=True
    )
    persistence_mode = serializers.CharField(read_only=True, allow_null=True)
    compute_mode = serializers.ChoiceField(
        ["default", "exclusive_thread", "prohibited", "exclusive_process"],
        read_only=True,
        allow_null=True,
    )
    encoder_utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    decoder_utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    mig_mode = serializers.CharField(read_only=True, allow_null=True)
    mig_devices = MIGDeviceSerializer(many=True, read_only=True)


class GPUDevicesResponseSerializer(ReadOnlySerializer):
    """Every GPU and their count (``gpu_monitor.types.GPUDevicesResponse``)."""

    devices = GPUDeviceSerializer(many=True, read_only=True)
    count = serializers.IntegerField(read_only=True)


class GPUProcessSerializer(ReadOnlySerializer):
    """A process on a GPU (``gpu_monitor.types.GPUProcess``)."""

    gpu_index = serializers.IntegerField(read_only=True)
    gpu_uuid = serializers.CharField(read_only=True, allow_null=True)
    pid = serializers.IntegerField(read_only=True)
    type = serializers.ChoiceField(["compute", "graphics", "compute+graphics"], read_only=True)
    used_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    sm_utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    memory_utilization_percent = serializers.IntegerField(read_only=True, allow_null=True)
    username = serializers.CharField(read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True, allow_null=True)
    command_line = serializers.ListField(
        child=serializers.CharField(), read_only=True, allow_null=True
    )
    host_memory_mb = serializers.IntegerField(read_only=True, allow_null=True)
    started_at = serializers.CharField(read_only=True, allow_null=True)
    gpu_instance_id = serializers.IntegerField(read_only=True, allow_null=True)
    compute_instance_id = serializers.IntegerField(read_only=True, allow_null=True)
    mig_uuid = serializers.CharField(read_only=True, allow_null=True)
    field_errors = serializers.DictField(child=serializers.CharField(), read_only=True)


class GPUProcessesResponseSerializer(ReadOnlySerializer):
    """Processes on the GPUs (``gpu_monitor.types.GPUProcessesResponse``)."""

    processes = GPUProcessSerializer(many=True, read_only=True)
    count = serializers.IntegerField(read_only=True)
    gpu_errors = serializers.DictField(child=serializers.CharField(), read_only=True)


class DriverInfoSerializer(ReadOnlySerializer):
    """Driver, CUDA and NVML versions (``gpu_monitor.types.DriverInfo``)."""

    driver_version = serializers.CharField(read_only=True)
    cuda_driver_version = serializers.CharField(read_only=True)
    nvml_version = serializers.CharField(read_only=True)


class GPUStatusSerializer(ReadOnlySerializer):
    """Health summary (``gpu_monitor.types.GPUStatus``)."""

    cuda_available = serializers.BooleanField(read_only=True)
    device_count = serializers.IntegerField(read_only=True)
    error_message = serializers.CharField(read_only=True, allow_null=True)


class ErrorSerializer(ReadOnlySerializer):
    """Every error body: ``{"detail": "..."}``."""

    detail = serializers.CharField(read_only=True)
