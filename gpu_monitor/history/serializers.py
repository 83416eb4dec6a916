"""Read-only serializers of the history API (the JSON shape and the OpenAPI schema): the
history's derived from its dataclasses, the events' declared beside their model."""

from __future__ import annotations

import datetime
import functools
import operator
from typing import Any

from rest_framework import serializers

from gpu_monitor.history.models import Event
from gpu_monitor.history.types import History, HistorySeries
from gpu_monitor.serializers import DataclassSerializer, ReadOnlySerializer


class HistorySeriesSerializer(DataclassSerializer):
    """One GPU's columns (``gpu_monitor.history.types.HistorySeries``)."""

    dataclass = HistorySeries

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # Every value is already its own representation (a string, an int, lists of
        # numbers or nulls): each attribute is given back as it is, in the declared
        # order, with no field's to_representation and no look at each value.
        names = _names(type(self))
        return dict(zip(names, operator.attrgetter(*names)(instance), strict=True))


@functools.cache
def _names(serializer: type[serializers.Serializer[Any]]) -> tuple[str, ...]:
    return tuple(serializer().fields)


class HistorySerializer(DataclassSerializer):
    """The history of a host's GPUs (``gpu_monitor.history.types.History``)."""

    dataclass = History


class EventSerializer(ReadOnlySerializer):
    """A recorded event (``gpu_monitor.history.models.Event``)."""

    host = serializers.CharField(read_only=True)
    gpu_uuid = serializers.CharField(read_only=True)
    gpu_index = serializers.IntegerField(read_only=True, allow_null=True)
    timestamp = serializers.DateTimeField(read_only=True, default_timezone=datetime.timezone.utc)
    kind = serializers.ChoiceField(Event.Kind.choices, read_only=True)
    xid = serializers.IntegerField(read_only=True, allow_null=True)
    message = serializers.CharField(read_only=True)
