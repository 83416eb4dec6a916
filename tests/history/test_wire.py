"""The push body (history/wire.py): a round trip gives the ticks the sampler read, and
every fault of a body is ``Invalid`` naming its place."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any

import pytest
from django.forms.models import model_to_dict

from gpu_monitor.fleet.models import HostState
from gpu_monitor.history import store, tick_writers, wire
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.models import ROLLUP_SECONDS, Event, Rollup, Sample
from gpu_monitor.history.recorded import event
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.history.sampler import Sampler
from gpu_monitor.manager import GPUManager
from gpu_monitor.types import XidEvent
from gpu_monitor.usage.models import Hold, Usage

UUID1 = "GPU-3a34af56-e2e8-164a-8e46-000000000001"


def rows(objects: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in model_to_dict(o).items() if k != "id"} for o in objects]


def sampled(fake_nvml: ModuleType, epoch: int = 1000) -> Tick:
    """One tick of the fake's GPUs, read as gpu_record --push reads it."""
    sampler = Sampler(GPUManager(), host="node-1", interval=10, processes=False, push=True)
    return sampler.snapshot(epoch)


def round_trip(ticks: list[Tick], dropped: int = 0) -> wire.Batch:
    body = wire.encode("node-1", 10, False, ticks, dropped)
    return wire.decode(json.loads(json.dumps(body)))


def body_of(fake_nvml: ModuleType) -> dict[str, Any]:
    return json.loads(json.dumps(wire.encode("node-1", 10, False, [sampled(fake_nvml)])))


def test_a_pushed_tick_decodes_to_the_tick_the_sampler_read(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3, scenario="mig")
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST
    first = Sampler(GPUManager(), host="node-1", interval=10, processes=False, push=True)
    first.snapshot(990)  # the sampler learns GPU 1's UUID before it is lost
    fake_nvml.STATE.gpus[1].handle_error = None
    first.snapshot(995)
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST
    tick = first.snapshot(1000)
    tick.xids.append(event("node-1", 998, Event.Kind.XID, 1, uuid=UUID1, xid=79, message="XID 79"))

    batch = round_trip([tick], dropped=4)

    assert (batch.host, batch.interval, batch.processes_recorded, batch.dropped) == (
        "node-1",
        10,
        False,
        4,
    )
    (back,) = batch.ticks
    assert back.epoch == 1000 and back.nvml_error is None
    assert rows(back.samples) == rows(tick.samples) and len(back.samples) == 2
    assert back.found == tick.found and back.lost == tick.lost == {1: (UUID1, "GPU is lost")}
    assert rows(back.xids) == rows(tick.xids)
    assert tick.context is not None and back.context is not None
    assert back.context.devices == tick.context.devices  # MIG devices and the lost GPU too
    assert back.context.devices[0].mig_devices
    assert (back.context.driver, back.context.processes) == (
        tick.context.driver,
        tick.context.processes,
    )
    assert back.context.local is False and tick.context.local is True


def test_push_mode_reads_the_processes_at_every_tick(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=2, scenario="load")
    tick = sampled(fake_nvml)
    assert tick.context is not None and tick.context.processes is not None
    assert tick.context.processes.count > 0
    (back,) = round_trip([tick]).ticks
    assert back.context is not None and back.context.processes == tick.context.processes


def test_push_mode_builds_the_context_on_a_node_without_tick_writers(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's own apps declare no tick writer (or none that needs the processes): the
    site's may, so a pushed tick always has its context, processes included."""
    monkeypatch.setattr(tick_writers, "registered", lambda: ())
    monkeypatch.setattr(tick_writers, "needs_processes", lambda: False)
    fake_nvml.configure(gpus=2, scenario="load")
    tick = sampled(fake_nvml)
    assert tick.context is not None and tick.context.processes is not None
    direct = Sampler(GPUManager(), host="node-1", interval=10, processes=False).snapshot(1000)
    assert direct.context is None  # as before: nothing to write it


def test_without_nvml_a_tick_has_its_error_and_no_gpu(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.count_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED
    (back,) = round_trip([sampled(fake_nvml)]).ticks
    assert back.nvml_error and "Driver Not Loaded" in back.nvml_error
    assert (back.samples, back.found, back.lost) == ([], {}, {})


def test_a_tick_without_its_context_is_not_encoded() -> None:
    with pytest.raises(ValueError, match="has no context"):
        wire.encode("node-1", 10, False, [Tick(1000)])


def test_ticks_keep_their_order_and_an_integer_power_is_a_float(fake_nvml: ModuleType) -> None:
    body = json.loads(
        json.dumps(
            wire.encode("node-1", 10, True, [sampled(fake_nvml, 1000), sampled(fake_nvml, 1010)])
        )
    )
    body["ticks"][0]["devices"][0]["power_draw_w"] = 250
    batch = wire.decode(body)
    assert [tick.epoch for tick in batch.ticks] == [1000, 1010]
    assert batch.ticks[0].samples[0].power_draw_w == 250.0
    assert type(batch.ticks[0].samples[0].power_draw_w) is float
    assert batch.processes_recorded is True


def test_ticks_in_any_order_decode_in_theirs(fake_nvml: ModuleType) -> None:
    """A node whose clock was set back: the store, not the body's check, decides."""
    ticks = [sampled(fake_nvml, 1010), sampled(fake_nvml, 1000), sampled(fake_nvml, 1000)]
    batch = round_trip(ticks)
    assert [tick.epoch for tick in batch.ticks] == [1010, 1000, 1000]


def test_keys_a_newer_node_adds_are_ignored_and_left_out_defaults_kept(
    fake_nvml: ModuleType,
) -> None:
    body = body_of(fake_nvml)
    body["ticks"][0]["devices"][0]["future_reading"] = 3
    del body["ticks"][0]["devices"][0]["energy_consumed_j"]
    (back,) = wire.decode(body).ticks
    assert back.context is not None and back.context.devices[0].energy_consumed_j is None


FAULTS: list[tuple[str, Any, str]] = [
    # (where, the new value (a callable edits the body), the message's start)
    ("", [], "body: an object, not []"),
    ("version", 2, "version: 1, not 2"),
    ("version", True, "version: 1, not true"),
    ("version", None, "version: 1, not null"),
    ("host", None, "body.host: a string, not null"),
    ("host", " ", "host: a host name cannot be empty or blank"),
    ("host", "a/b", "host: a host name must not contain '/'"),
    ("host", "..", "host: a host name cannot be '..'"),
    ("host", "a\nb", "host: a host name must not contain a control character"),
    ("host", "x" * 256, "host: a host name is at most 255 characters, not 256"),
    ("interval", 0, "interval: from 1 to 86400, not 0"),
    ("interval", 86401, "interval: from 1 to 86400, not 86401"),
    ("interval", "10", 'body.interval: an integer, not "10"'),
    ("interval", 10.0, "body.interval: an integer, not 10.0"),
    ("processes_recorded", 1, "body.processes_recorded: true or false, not 1"),
    ("dropped", -1, "dropped: from 0 to 2147483647, not -1"),
    ("ticks", {}, "body.ticks: a list, not {}"),
    ("ticks", [None] * 2001, "ticks: at most 2000 in one body, not 2001"),
    ("ticks.0", "x", 'ticks[0]: an object, not "x"'),
    ("ticks.0.epoch", -1, "ticks[0].epoch: from 0 to 1099511627776, not -1"),
    ("ticks.0.epoch", 2**40 + 1, "ticks[0].epoch: from 0 to 1099511627776"),
    ("ticks.0.nvml_error", 3, "ticks[0].nvml_error: a string, not 3"),
    ("ticks.0.devices", None, "ticks[0].devices: a list, not null"),
    (
        "ticks.0.devices.0.temperature_c",
        "hot",
        'ticks[0].devices[0].temperature_c: an integer, not "hot"',
    ),
    (
        "ticks.0.devices.0.temperature_c",
        40000,
        "ticks[0].devices[0].temperature_c: from -32768 to 32767",
    ),
    ("ticks.0.devices.0.used_memory_mb", 2**31, "ticks[0].devices[0].used_memory_mb: from"),
    (
        "ticks.0.devices.0.ecc_errors_corrected_volatile",
        2**64,
        "ticks[0].devices[0].ecc_errors_corrected_volatile: from",
    ),
    (
        "ticks.0.devices.0.power_draw_w",
        "71",
        'ticks[0].devices[0].power_draw_w: a finite number, not "71"',
    ),
    (
        "ticks.0.devices.0.power_draw_w",
        float("nan"),
        "ticks[0].devices[0].power_draw_w: a finite number, not NaN",
    ),
    ("ticks.0.devices.0.index", -1, "ticks[0].devices[0].index: from 0 to 32767, not -1"),
    ("ticks.0.devices.0.index", True, "ticks[0].devices[0].index: an integer, not true"),
    ("ticks.0.devices.0.name", None, "ticks[0].devices[0].name: a string, not null"),
    ("ticks.0.devices.0.uuid", "G" * 97, "ticks[0].devices[0].uuid: at most 96 characters"),
    (
        "ticks.0.devices.0.ecc_mode",
        "on",
        'ticks[0].devices[0].ecc_mode: one of "enabled", "disabled", not "on"',
    ),
    (
        "ticks.0.devices.0.clocks_event_reasons",
        [1],
        "ticks[0].devices[0].clocks_event_reasons[0]: a string, not 1",
    ),
    (
        "ticks.0.devices.0.field_errors",
        {"fan": 1},
        "ticks[0].devices[0].field_errors.fan: a string, not 1",
    ),
    (
        "ticks.0.devices.0.mig_devices",
        [{"uuid": None}],
        "ticks[0].devices[0].mig_devices[0].name: required",
    ),
    (
        "ticks.0.devices.0.is_available",
        "yes",
        'ticks[0].devices[0].is_available: true or false, not "yes"',
    ),
    ("ticks.0.devices.1.index", 0, "ticks[0].devices[1].index: GPU 0 is listed twice"),
    ("ticks.0.devices.0", lambda d: d.pop("index"), "ticks[0].devices[0].index: required"),
    (
        "ticks.0.lost",
        [{"index": 0, "uuid": "", "message": ""}],
        "ticks[0].lost[0].index: 0 is not a GPU listed as unavailable",
    ),
    ("ticks.0.lost", None, "ticks[0].lost: a list, not null"),
    ("ticks.0.devices.1.is_available", False, "ticks[0].lost: GPU 1 is unavailable but not in it"),
    ("ticks.0.driver", {"driver_version": 1}, "ticks[0].driver.driver_version: a string, not 1"),
    ("ticks.0.driver", {"driver_version": "1"}, "ticks[0].driver.cuda_driver_version: required"),
    (
        "ticks.0.processes",
        {"processes": [{"pid": "x"}], "count": 1},
        "ticks[0].processes.processes[0].gpu_index: required",
    ),
    (
        "ticks.0.processes",
        {"processes": [], "count": None},
        "ticks[0].processes.count: an integer, not null",
    ),
    (
        "ticks.0.xids",
        [{"epoch": 1, "xid": 79, "gpu_index": 40000}],
        "ticks[0].xids[0].gpu_index: from 0 to 32767",
    ),
    ("ticks.0.xids", [{"epoch": 1}], "ticks[0].xids[0].xid: required"),
    (
        "ticks.0.xids",
        [{"epoch": 1, "xid": 79, "gpu_uuid": 5}],
        "ticks[0].xids[0].gpu_uuid: a string, not 5",
    ),
    ("ticks.0.xids", [{"epoch": 1, "xid": 2**31}], "ticks[0].xids[0].xid: from"),
]


def edited(body: dict[str, Any], where: str, value: Any) -> Any:
    if not where:
        return value
    *path, last = where.split(".")
    target: Any = body
    for part in path:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if callable(value):
        value(target[key])
    else:
        target[key] = value
    return body


@pytest.mark.parametrize(("where", "value", "message"), FAULTS, ids=[f[2][:50] for f in FAULTS])
def test_every_fault_is_invalid_naming_its_place(
    fake_nvml: ModuleType, where: str, value: Any, message: str
) -> None:
    body = body_of(fake_nvml)
    wire.decode(copy.deepcopy(body))  # the body itself is valid
    with pytest.raises(wire.Invalid) as raised:
        wire.decode(edited(body, where, value))
    assert str(raised.value).startswith(message), str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_tick_with_more_gpus_than_a_host_has_is_invalid(fake_nvml: ModuleType) -> None:
    body = body_of(fake_nvml)
    device = body["ticks"][0]["devices"][0]
    body["ticks"][0]["devices"] = [{**device, "index": n} for n in range(1025)]
    with pytest.raises(wire.Invalid, match=r"^ticks\[0\]\.devices: at most 1024 GPUs, not 1025"):
        wire.decode(body)


def test_a_long_value_is_cut_in_the_message(fake_nvml: ModuleType) -> None:
    body = body_of(fake_nvml)
    body["ticks"][0]["devices"][0]["name"] = ["x" * 100]
    with pytest.raises(wire.Invalid) as raised:
        wire.decode(body)
    shown = '["' + "x" * 35 + "..."  # 40 characters
    assert str(raised.value) == f"ticks[0].devices[0].name: a string, not {shown}"


# -- a pushed tick writes what the recorder writes ---------------------------------------

WRITTEN = (Sample, Rollup, Event, HostState, Usage, Hold)  # by the recorder and tick writers


def written_rows() -> dict[str, list[dict[str, Any]]]:
    """Every row the recorder and the sub-apps' tick writers keep, without ids."""
    return {
        model.__name__: sorted(rows(list(model.objects.all())), key=lambda row: str(row))
        for model in WRITTEN
    }


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", ["lost", "load", "no_nvml"])
def test_a_pushed_tick_writes_the_rows_the_recorder_writes(
    fake_nvml: ModuleType, scenario: str
) -> None:
    """The same two snapshots, written by the recorder, then (the rows deleted) pushed:
    decoded and written by the site's store, as the ingest endpoint does."""
    fake_nvml.configure(gpus=3, scenario=scenario)
    xid = XidEvent(gpu_index=0, gpu_uuid=None, xid=79, at=995.5)
    direct = Recorder(GPUManager(), host="node-1", interval=10, retention_s=None, buffer_ticks=9)
    direct.sampler.xid_queue.put(xid)
    later = 1000 + ROLLUP_SECONDS  # the first tick's period is over: rolled up
    direct.tick(1000)
    direct.tick(later)
    by_recorder = written_rows()
    assert by_recorder["Event"] and by_recorder["HostState"]
    assert by_recorder["Rollup"] or scenario == "no_nvml"
    assert by_recorder["Sample"] or scenario == "no_nvml"
    assert by_recorder["Usage"] or scenario != "load"
    for model in WRITTEN:
        model.objects.all().delete()

    sampler = Sampler(GPUManager(), host="node-1", interval=10, processes=False, push=True)
    sampler.xid_queue.put(xid)
    ticks = [sampler.snapshot(1000), sampler.snapshot(later)]
    batch = wire.decode(json.loads(json.dumps(wire.encode("node-1", 10, False, ticks))))
    assert store.write_pushed(batch, "default") == store.Written(2, 0)

    assert written_rows() == by_recorder
