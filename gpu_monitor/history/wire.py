"""The recorder's ticks on the wire: what ``gpu_record --push`` sends to ``POST
api/gpu/ingest`` (``encode``), and what the site makes of it (``decode``).

A body (version 1) holds the ticks of one host, oldest first. Each tick carries what the
sampler read: its devices as ``GET api/gpu/devices`` renders each (the lost ones too),
the driver and processes as their endpoints render them, the UUID the node last knew
for each lost GPU, and the XID errors. ``decode`` checks every field against the
dataclasses of ``gpu_monitor.types`` and the columns it ends up in, and rebuilds the
ticks as the sampler built them (``sampler.sample_of``, ``recorded.event``), so that a
pushed tick writes the rows a direct writer writes. Anything wrong is ``Invalid``, whose
message names the place (``ticks[3].devices[0].temperature_c: ...``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
import unicodedata
from dataclasses import dataclass
from typing import Any, TypeVar

from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import Event
from gpu_monitor.history.recorded import event
from gpu_monitor.history.sampler import sample_of
from gpu_monitor.history.tick_writers import TickContext
from gpu_monitor.params import shown
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDeviceSerializer,
    GPUProcessesResponseSerializer,
)
from gpu_monitor.stored import MAX_HOST_LENGTH, from_stored
from gpu_monitor.types import DriverInfo, GPUDevice, GPUProcess, GPUProcessesResponse, MIGDevice

VERSION = 1
MAX_TICKS = 2000  # in one body
MAX_DEVICES = 1024  # in one tick
MAX_INDEX = 32767  # a GPU index (the columns' PositiveSmallIntegerField)
MAX_EPOCH = 2**40
MAX_INTERVAL = 86400  # gpu_record's longest --interval
MAX_UUID_LENGTH = 96  # the gpu_uuid columns' max_length
SMALL = (-(2**15), 2**15 - 1)
INTEGER = (-(2**31), 2**31 - 1)
BIG = (-(2**63), 2**63 - 1)
# The device readings a sample stores, by the range of their column; any other integer
# is stored as JSON (the fleet's state) and only bounded to 64 bits.
COLUMN_RANGES = {
    "utilization_percent": SMALL,
    "temperature_c": SMALL,
    "used_memory_mb": INTEGER,
    "total_memory_mb": INTEGER,
    "sm_clock_mhz": INTEGER,
}


class Invalid(ValueError):
    """A body that is not a version-1 push: the message names the place and the fault."""


@dataclass(frozen=True)
class Batch:
    """A decoded body: ``dropped`` ticks were dropped by the node's full buffer before
    the first of ``ticks``."""

    host: str
    interval: int
    processes_recorded: bool
    dropped: int
    ticks: list[Tick]


def host_problem(text: str, name: str) -> str | None:
    """What is wrong with ``text`` as a host name (``name``: what the message calls it),
    or None: 1 to 255 characters, not blank, no "/" (the URL ``api/gpu/hosts/<host>``
    names a host in one path segment), not "." or "..", and no control character."""
    if not text.strip():
        return "a host name cannot be empty or blank"
    if len(text) > MAX_HOST_LENGTH:
        return f"a host name is at most {MAX_HOST_LENGTH} characters, not {len(text)}"
    if "/" in text:
        return (
            f"{name} must not contain '/' (the fleet's pages name a host in one URL path "
            f"segment): {shown(text)}"
        )
    if text in (".", ".."):
        return (
            f"{name} cannot be {text!r} (a browser reads it in a URL as this or the parent "
            "path, so the fleet's pages could not open it)"
        )
    control = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        return f"{name} must not contain a control character ({control!r}): {shown(text)}"
    return None


# -- encode ------------------------------------------------------------------------------


def encode(
    host: str, interval: int, processes_recorded: bool, ticks: list[Tick], dropped: int = 0
) -> dict[str, Any]:
    """The body for ``ticks`` of ``host`` (JSON-able); every tick carries its context."""
    return {
        "version": VERSION,
        "host": host,
        "interval": interval,
        "processes_recorded": processes_recorded,
        "dropped": dropped,
        "ticks": [encode_tick(tick) for tick in ticks],
    }


def encode_tick(tick: Tick) -> dict[str, Any]:
    context = tick.context
    if context is None:
        raise ValueError(f"the tick at {tick.epoch} has no context: the sampler builds one")
    device = GPUDeviceSerializer()
    return {
        "epoch": tick.epoch,
        "nvml_error": tick.nvml_error,
        "devices": [device.to_representation(each) for each in context.devices],
        "lost": [
            {"index": index, "uuid": uuid, "message": message}
            for index, (uuid, message) in sorted(tick.lost.items())
        ],
        "driver": None
        if context.driver is None
        else DriverInfoSerializer().to_representation(context.driver),
        "processes": None
        if context.processes is None
        else GPUProcessesResponseSerializer().to_representation(context.processes),
        "xids": [
            {
                "epoch": xid.epoch,
                "gpu_index": xid.gpu_index,
                "gpu_uuid": xid.gpu_uuid,
                "xid": xid.xid,
            }
            for xid in tick.xids
        ],
    }


# -- decode ------------------------------------------------------------------------------


def decode(payload: object) -> Batch:
    """The batch in ``payload`` (a parsed JSON body); raises ``Invalid`` naming the place."""
    body = mapping(payload, "body")
    version = body.get("version")
    if version != VERSION or type(version) is not int:
        raise Invalid(f"version: {VERSION}, not {said(version)}")
    host = required(body, "host", "body", str)
    problem = host_problem(host, "a host name")
    if problem is not None:
        raise Invalid(f"host: {problem}")
    interval = bounded(required(body, "interval", "body", int), "interval", 1, MAX_INTERVAL)
    processes_recorded = required(body, "processes_recorded", "body", bool)
    dropped = bounded(required(body, "dropped", "body", int), "dropped", 0, INTEGER[1])
    ticks = required(body, "ticks", "body", list)
    if len(ticks) > MAX_TICKS:
        raise Invalid(f"ticks: at most {MAX_TICKS} in one body, not {len(ticks)}")
    # In any order: a node whose clock was set back sends a tick before the one it sent
    # last (the store writes them oldest first, and counts one it has passed as written).
    decoded = [
        decode_tick(item, f"ticks[{n}]", host, interval, processes_recorded)
        for n, item in enumerate(ticks)
    ]
    return Batch(host, interval, processes_recorded, dropped, decoded)


def decode_tick(
    payload: object, place: str, host: str, interval: int, processes_recorded: bool
) -> Tick:
    data = mapping(payload, place)
    epoch = bounded(required(data, "epoch", place, int), f"{place}.epoch", 0, MAX_EPOCH)
    nvml_error = optional(data, "nvml_error", place, str)
    listed = required(data, "devices", place, list)
    if len(listed) > MAX_DEVICES:
        raise Invalid(f"{place}.devices: at most {MAX_DEVICES} GPUs, not {len(listed)}")
    devices: list[GPUDevice] = []
    for n, item in enumerate(listed):
        device = decode_device(item, f"{place}.devices[{n}]")
        if any(other.index == device.index for other in devices):
            raise Invalid(f"{place}.devices[{n}].index: GPU {device.index} is listed twice")
        devices.append(device)
    tick = Tick(epoch, nvml_error=nvml_error)
    unavailable = {device.index for device in devices if not device.is_available}
    for n, item in enumerate(required(data, "lost", place, list)):
        where = f"{place}.lost[{n}]"
        lost = mapping(item, where)
        index = bounded(required(lost, "index", where, int), f"{where}.index", 0, MAX_INDEX)
        if index not in unavailable or index in tick.lost:
            raise Invalid(
                f"{where}.index: {index} is not a GPU listed as unavailable in the devices "
                "(or it is listed twice)"
            )
        uuid = uuid_of(required(lost, "uuid", where, str), f"{where}.uuid")
        tick.lost[index] = (uuid, required(lost, "message", where, str))
    for device in devices:
        if device.is_available:
            tick.found[device.index] = device.uuid or ""
            if device.uuid:
                tick.samples.append(sample_of(host, epoch, device))
        elif device.index not in tick.lost:
            raise Invalid(f"{place}.lost: GPU {device.index} is unavailable but not in it")
    driver_data = data.get("driver")
    driver = None if driver_data is None else checked(DriverInfo, driver_data, f"{place}.driver")
    processes_data = data.get("processes")
    processes = None
    if processes_data is not None:
        processes = checked(GPUProcessesResponse, processes_data, f"{place}.processes")
    for n, item in enumerate(required(data, "xids", place, list)):
        tick.xids.append(decode_xid(item, f"{place}.xids[{n}]", host))
    tick.context = TickContext(
        host=host,
        epoch=epoch,
        interval=interval,
        devices=devices,
        driver=driver,
        processes=processes,
        processes_recorded=processes_recorded,
        local=False,
    )
    return tick


def decode_device(payload: object, place: str) -> GPUDevice:
    device = checked(GPUDevice, payload, place)
    bounded(device.index, f"{place}.index", 0, MAX_INDEX)
    if device.uuid is not None:
        uuid_of(device.uuid, f"{place}.uuid")
    for name, (low, high) in COLUMN_RANGES.items():
        value = getattr(device, name)
        if value is not None:
            bounded(value, f"{place}.{name}", low, high)
    return device


def decode_xid(payload: object, place: str, host: str) -> Event:
    data = mapping(payload, place)
    epoch = bounded(required(data, "epoch", place, int), f"{place}.epoch", 0, MAX_EPOCH)
    index = optional(data, "gpu_index", place, int)
    if index is not None:
        bounded(index, f"{place}.gpu_index", 0, MAX_INDEX)
    uuid = uuid_of(optional(data, "gpu_uuid", place, str) or "", f"{place}.gpu_uuid")
    xid = bounded(required(data, "xid", place, int), f"{place}.xid", *INTEGER)
    return event(host, epoch, Event.Kind.XID, index, uuid=uuid, xid=xid, message=f"XID {xid}")


# -- checking a JSON value against a dataclass -------------------------------------------

NESTED = {MIGDevice, GPUProcess}  # the dataclasses that appear in lists of the others
T = TypeVar("T")


def checked(cls: type[T], payload: object, place: str) -> T:
    """``cls`` from ``payload``, each field checked against its annotation: a field
    without a default is required, one with a default may be left out (a node on an
    older version), keys ``cls`` has no field for are ignored (a newer one)."""
    data = mapping(payload, place)
    hints = typing.get_type_hints(cls)
    given: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise Invalid(f"{place}.{f.name}: required")
            continue
        given[f.name] = value_of(hints[f.name], data[f.name], f"{place}.{f.name}")
    return from_stored(cls, {}, **given)


def value_of(annotation: Any, value: object, place: str) -> Any:
    """``value`` checked against ``annotation`` (the types of gpu_monitor.types)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        if value is None:
            return None
        (annotation,) = (arg for arg in args if arg is not type(None))
        return value_of(annotation, value, place)
    if origin is typing.Literal:
        if value not in args or type(value) is not str:
            choices = ", ".join(json.dumps(arg) for arg in args)
            raise Invalid(f"{place}: one of {choices}, not {said(value)}")
        return value
    if origin is list:
        if type(value) is not list:
            raise Invalid(f"{place}: a list, not {said(value)}")
        return [value_of(args[0], item, f"{place}[{n}]") for n, item in enumerate(value)]
    if origin is dict:
        items = mapping(value, place)
        return {key: value_of(args[1], item, f"{place}.{key}") for key, item in items.items()}
    if annotation in NESTED:
        return checked(annotation, value, place)
    return scalar(annotation, value, place)


def scalar(annotation: Any, value: object, place: str) -> Any:
    if annotation is float and type(value) is float and math.isfinite(value):
        return value
    if annotation is float and type(value) is int:
        return float(bounded(value, place, *BIG))
    if annotation is int and type(value) is int:
        return bounded(value, place, *BIG)
    if annotation in (str, bool) and type(value) is annotation:
        return value
    nouns = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}
    raise Invalid(f"{place}: {nouns[annotation]}, not {said(value)}")


def mapping(value: object, place: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise Invalid(f"{place}: an object, not {said(value)}")
    return value


def required(data: dict[str, Any], key: str, place: str, kind: type) -> Any:
    if key not in data:
        raise Invalid(f"{place}.{key}: required")
    return scalar_or(kind, data[key], f"{place}.{key}")


def optional(data: dict[str, Any], key: str, place: str, kind: type) -> Any:
    value = data.get(key)
    return None if value is None else scalar_or(kind, value, f"{place}.{key}")


def scalar_or(kind: type, value: object, place: str) -> Any:
    if kind is list:
        if type(value) is not list:
            raise Invalid(f"{place}: a list, not {said(value)}")
        return value
    return scalar(kind, value, place)


def bounded(value: int, place: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise Invalid(f"{place}: from {low} to {high}, not {value}")
    return value


def uuid_of(text: str, place: str) -> str:
    if len(text) > MAX_UUID_LENGTH:
        raise Invalid(f"{place}: at most {MAX_UUID_LENGTH} characters, not {len(text)}")
    return text


def said(value: object) -> str:
    """``value`` as the message shows it: JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
