"""Read-only serializers of the history API (the JSON shape and the OpenAPI schema)."""

from __future__ import annotations

import datetime
import functools
import operator
from typing import Any

from rest_framework import serializers

from gpu_monitor.history.models import Event
from gpu_monitor.serializers import ReadOnlySerializer


def column(child: serializers.Field) -> serializers.ListField:  # type: ignore[type-arg]
    """A column of numbers or nulls (for the schema: ``HistorySeriesSerializer`` gives
    the lists back as they are)."""
    return serializers.ListField(child=child, read_only=True)


class HistorySeriesSerializer(ReadOnlySerializer):
    """One GPU's columns (``gpu_monitor.history.types.HistorySeries``)."""

    # Every value is already its own representation (a string, an int, lists of numbers
    # or nulls): each attribute is given back as it is, in the declared order, with no
    # field's to_representation and no look at each value of the columns.

    gpu_uuid = serializers.CharField(read_only=True)
    gpu_index = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    t = column(serializers.IntegerField())
    utilization_percent = column(serializers.FloatField(allow_null=True))
    utilization_percent_max = column(serializers.IntegerField(allow_null=True))
    used_memory_mb = column(serializers.IntegerField(allow_null=True))
    total_memory_mb = column(serializers.IntegerField(allow_null=True))
    temperature_c = column(serializers.IntegerField(allow_null=True))
    power_draw_w = column(serializers.FloatField(allow_null=True))

    def to_representation(self, instance: Any) -> dict[str, Any]:
        names = _names(type(self))
        return dict(zip(names, operator.attrgetter(*names)(instance), strict=True))


@functools.cache
def _names(serializer: type[serializers.Serializer[Any]]) -> tuple[str, ...]:
    return tuple(serializer().fields)


class HistorySerializer(ReadOnlySerializer):
    """The history of a host's GPUs (``gpu_monitor.history.types.History``)."""

    host = serializers.CharField(read_only=True)
    since = serializers.CharField(read_only=True)
    until = serializers.CharField(read_only=True)
    step_seconds = serializers.IntegerField(read_only=True)
    series = HistorySeriesSerializer(many=True, read_only=True)


class EventSerializer(ReadOnlySerializer):
    """A recorded event (``gpu_monitor.history.models.Event``)."""

    host = serializers.CharField(read_only=True)
    gpu_uuid = serializers.CharField(read_only=True)
    gpu_index = serializers.IntegerField(read_only=True, allow_null=True)
    timestamp = serializers.DateTimeField(read_only=True, default_timezone=datetime.timezone.utc)
    kind = serializers.ChoiceField(Event.Kind.choices, read_only=True)
    xid = serializers.IntegerField(read_only=True, allow_null=True)
    message = serializers.CharField(read_only=True)
