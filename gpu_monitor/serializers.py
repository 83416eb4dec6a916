"""Read-only DRF serializers derived from the dataclasses of ``gpu_monitor.types``: the
API, the command's ``--json`` and the OpenAPI schema all render through them."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.fields import Field

from gpu_monitor.types import (
    DriverInfo,
    GPUDevice,
    GPUDevicesResponse,
    GPUProcess,
    GPUProcessesResponse,
    GPUStatus,
    MIGDevice,
)


class ReadOnlySerializer(serializers.Serializer[Any]):
    """A read-only serializer with a lean ``to_representation``.

    DRF deep-copies every declared field for each serializer instance, and looks each
    attribute up through its generic source machinery for each value. Here the bound
    fields are made once per class and each value goes straight to its field's
    ``to_representation``, or is given back as it is where that would change nothing.
    The declared fields stay the one source of the JSON shape (and of the OpenAPI
    schema), and the output is DRF's generic path's (a test compares them). Kept, not
    folded back into DRF's path, by the measure of ``bench/bypass.py`` against a bare
    view's floor (docs/benchmarks.md, "Framework bypasses").
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
# float(v), the bool, the choice's own string): skipping the call changes nothing.
UNCHANGED: dict[type, type] = {
    serializers.IntegerField: int,
    serializers.CharField: str,
    serializers.FloatField: float,
    serializers.BooleanField: bool,
    serializers.ChoiceField: str,
}


def _field(annotation: Any, child: bool = False) -> Field[Any, Any, Any, Any]:
    """The read-only DRF field for a dataclass field's type (``child``: the items of a
    list or the values of a dict, which take no options of their own)."""
    options: dict[str, Any] = {} if child else {"read_only": True}
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (types.UnionType, typing.Union) and type(None) in args:
        options["allow_null"] = True
        (annotation,) = (arg for arg in args if arg is not type(None))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return serializers.ChoiceField(list(args), **options)
    if origin is list and args[0] in DataclassSerializer.nested:
        return DataclassSerializer.nested[args[0]](many=True, **options)
    if origin is list:
        return serializers.ListField(child=_field(args[0], child=True), **options)
    if origin is dict:
        return serializers.DictField(child=_field(args[1], child=True), **options)
    return SCALARS[annotation](**options)


SCALARS: dict[Any, type[Field[Any, Any, Any, Any]]] = {
    int: serializers.IntegerField,
    str: serializers.CharField,
    float: serializers.FloatField,
    bool: serializers.BooleanField,
}


class DataclassSerializer(ReadOnlySerializer):
    """A read-only serializer whose fields are derived from ``dataclass``, one per
    dataclass field and in its order: the dataclass in ``gpu_monitor.types`` is the one
    declaration of the JSON shape (and, through drf-spectacular, of the OpenAPI schema).
    A field declared on the class replaces the derived one of that name; other declared
    fields follow.
    """

    dataclass: ClassVar[type | None] = None
    nested: ClassVar[dict[type, type[DataclassSerializer]]] = {}  # by dataclass: the first

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.dataclass is None:
            return
        hints = typing.get_type_hints(cls.dataclass)
        declared = cls._declared_fields
        derived = {
            f.name: declared.get(f.name) or _field(hints[f.name])
            for f in dataclasses.fields(cls.dataclass)
        }
        cls.nested.setdefault(cls.dataclass, cls)
        cls._declared_fields = {
            **derived,
            **{name: field for name, field in declared.items() if name not in derived},
        }


class MIGDeviceSerializer(DataclassSerializer):
    """One MIG device of a GPU (``gpu_monitor.types.MIGDevice``)."""

    dataclass = MIGDevice


class GPUDeviceSerializer(DataclassSerializer):
    """One GPU (``gpu_monitor.types.GPUDevice``)."""

    dataclass = GPUDevice


class GPUDevicesResponseSerializer(DataclassSerializer):
    """Every GPU and their count (``gpu_monitor.types.GPUDevicesResponse``)."""

    dataclass = GPUDevicesResponse


class GPUProcessSerializer(DataclassSerializer):
    """A process on a GPU (``gpu_monitor.types.GPUProcess``)."""

    dataclass = GPUProcess


class GPUProcessesResponseSerializer(DataclassSerializer):
    """Processes on the GPUs (``gpu_monitor.types.GPUProcessesResponse``)."""

    dataclass = GPUProcessesResponse


class DriverInfoSerializer(DataclassSerializer):
    """Driver, CUDA and NVML versions (``gpu_monitor.types.DriverInfo``)."""

    dataclass = DriverInfo


class GPUStatusSerializer(DataclassSerializer):
    """Health summary (``gpu_monitor.types.GPUStatus``)."""

    dataclass = GPUStatus


class ErrorSerializer(ReadOnlySerializer):
    """Every error body: ``{"detail": "..."}``."""

    detail = serializers.CharField(read_only=True)
