"""The recorder (gpu_record) against the fake NVML and the real test database."""

from __future__ import annotations

import io
import itertools
import logging
import threading
import time
from types import ModuleType

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gpu_monitor.history import retention, tick_writers
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.management.commands.gpu_record import duration
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager
from gpu_monitor.params import moment
from tests.history.test_recorder_process import WAIT_S, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
UUID0 = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
UUID1 = "GPU-3a34af56-e2e8-164a-8e46-000000000001"


def make(fake_nvml: ModuleType, **options: object) -> Recorder:
    settings = {"host": "node-1", "interval": 10, "retention_s": 7 * 86400, "buffer_ticks": 360}
    settings.update(options)
    return Recorder(GPUManager(), **settings)  # type: ignore[arg-type]


def kinds() -> list[tuple[str, int | None, str]]:
    return list(Event.objects.order_by("epoch", "id").values_list("kind", "gpu_index", "gpu_uuid"))


def test_a_tick_writes_one_sample_per_gpu(fake_nvml: ModuleType) -> None:
    gpu = fake_nvml.STATE.gpus[1]
    gpu.utilization_gpu, gpu.used_v2, gpu.temperature = 87, 1000 * 1048576, 71
    gpu.clocks_event_reasons, gpu.ecc_uncorrected_volatile = 0x40, 2

    make(fake_nvml).tick(1_795_855_930)

    samples = list(Sample.objects.order_by("gpu_index"))
    assert [(s.host, s.gpu_uuid, s.gpu_index, s.epoch) for s in samples] == [
        ("node-1", UUID0, 0, 1_795_855_930),
        ("node-1", UUID1, 1, 1_795_855_930),
    ]
    second = samples[1]
    assert (second.utilization_percent, second.used_memory_mb, second.total_memory_mb) == (
        87,
        1000,
        81559,
    )
    assert (second.temperature_c, second.power_draw_w, second.sm_clock_mhz) == (71, 71.07, 345)
    assert second.clocks_event_reasons == "hw_thermal_slowdown"
    assert second.ecc_errors_uncorrected_volatile == 2
    assert second.remapped_rows_pending is False
    assert second.timestamp.timestamp() == 1_795_855_930
    assert samples[0].clocks_event_reasons == "gpu_idle"
    assert Event.objects.count() == 0


def test_one_tick_is_one_snapshot_and_one_transaction(fake_nvml: ModuleType) -> None:
    recorder = make(fake_nvml)
    fake_nvml.CALLS.clear()
    with CaptureQueriesContext(connection) as queries:
        recorder.tick(1000)

    # One snapshot, and one listing of the processes when a sub-app needs them (usage).
    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 1 + tick_writers.needs_processes()
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT") and "_sample" in q["sql"]]
    assert len(inserts) == 1  # both samples in one bulk insert; no event this tick


def test_once_stamps_the_second_it_reads_not_the_start_of_its_interval(
    fake_nvml: ModuleType,
) -> None:
    # 2026-11-28T00:07:20.6Z, an hourly cron (--interval 1h): not 00:00:00.
    recorder = make(fake_nvml, interval=3600, clock=lambda: 1_795_824_440.6)

    recorder.run(once=True)

    assert set(Sample.objects.values_list("epoch", flat=True)) == {1_795_824_440}


def test_gpu_record_once_stamps_the_time_of_its_reading(fake_nvml: ModuleType) -> None:
    before = int(time.time())
    call_command("gpu_record", "--once", "--interval", "1d", stdout=io.StringIO())
    after = time.time()

    (epoch,) = set(Sample.objects.values_list("epoch", flat=True))
    assert before <= epoch <= after


def test_ticks_fall_on_wall_clock_multiples(fake_nvml: ModuleType) -> None:
    """The writer says which ticks it wrote; this thread reads the database only once the
    recorder is stopped (polling the shared in-memory SQLite while the writer writes
    failed with "database table is locked" under load)."""
    recorder = make(fake_nvml, interval=2)
    written: list[int] = []
    two_written = threading.Event()
    write_tick = recorder.writer.write_tick

    def counted(tick: Tick) -> None:
        write_tick(tick)
        written.append(tick.epoch)
        if len(written) >= 2:
            two_written.set()

    recorder.writer.write_tick = counted  # type: ignore[method-assign]
    runner = threading.Thread(target=recorder.run, name="test-recorder")
    runner.start()
    try:
        assert two_written.wait(WAIT_S), f"ticks written in {WAIT_S} s: {written}"
    finally:
        recorder.stop()
        runner.join(WAIT_S)
    assert not runner.is_alive()
    for thread in threading.enumerate():  # run() may return while its writer writes on
        if thread.name == "gpu-write":
            thread.join(WAIT_S)

    epochs = sorted(set(Sample.objects.values_list("epoch", flat=True)))
    assert epochs == sorted(set(written)) and len(epochs) >= 2
    assert all(epoch % 2 == 0 for epoch in epochs)  # on multiples of the interval
    assert all(later > earlier for earlier, later in itertools.pairwise(epochs))


def test_two_recorders_on_one_host_keep_one_sample_per_tick(fake_nvml: ModuleType) -> None:
    first, second = make(fake_nvml), make(fake_nvml)

    first.tick(1000)
    second.tick(1000)  # the same tick from a second recorder: ignored, not an error
    second.tick(1010)

    assert Sample.objects.filter(epoch=1000).count() == 2
    assert Sample.objects.count() == 4
    assert not first.buffer and not second.buffer


def test_hosts_are_kept_apart(fake_nvml: ModuleType) -> None:
    make(fake_nvml, host="a").tick(1000)
    make(fake_nvml, host="b").tick(1000)

    assert sorted(Sample.objects.values_list("host", flat=True)) == ["a", "a", "b", "b"]


def test_gpu_lost_then_recovered(fake_nvml: ModuleType) -> None:
    recorder = make(fake_nvml)
    recorder.tick(1000)
    fake_nvml.STATE.gpus[1].handle_error = fake_nvml.NVML_ERROR_GPU_IS_LOST
    recorder.tick(1010)
    recorder.tick(1020)  # still lost: no second event
    fake_nvml.STATE.gpus[1].handle_error = None
    recorder.tick(1030)

    assert kinds() == [("gpu_lost", 1, UUID1), ("gpu_recovered", 1, UUID1)]
    assert Event.objects.get(kind="gpu_lost").message == "GPU is lost"
    assert list(Sample.objects.filter(gpu_index=1).values_list("epoch", flat=True)) == [
        1030,
        1000,
    ]  # no sample while lost: a gap
    assert Sample.objects.filter(gpu_index=0).count() == 4


def test_nvml_unavailable_then_back(fake_nvml: ModuleType) -> None:
    recorder = make(fake_nvml)
    recorder.tick(1000)
    fake_nvml.STATE.count_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED
    recorder.tick(1010)
    recorder.tick(1020)
    fake_nvml.STATE.count_error = None
    recorder.tick(1030)

    assert kinds() == [("nvml_unavailable", None, ""), ("nvml_available", None, "")]
    assert "Driver Not Loaded" in Event.objects.get(kind="nvml_unavailable").message
    assert sorted(set(Sample.objects.values_list("epoch", flat=True))) == [1000, 1030]


def test_starting_without_nvml_records_it_and_keeps_running(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    recorder = make(fake_nvml)

    recorder.tick(1000)
    recorder.tick(1010)

    assert kinds() == [("nvml_unavailable", None, "")]
    assert Sample.objects.count() == 0


def test_xid_events_are_recorded_with_their_code(fake_nvml: ModuleType) -> None:
    recorder = make(fake_nvml)
    fake_nvml.STATE.xid_events = [(1, 79), (0, 48)]
    first_set = len(fake_nvml.EVENT_SETS)  # earlier tests' sets are theirs
    listener = threading.Thread(
        target=recorder.sampler.listen_for_xid, args=(recorder.stopping,), name="gpu-xid"
    )
    listener.start()
    try:
        wait_for(lambda: recorder.sampler.xid_queue.qsize() >= 2, WAIT_S)
    finally:
        recorder.stop()
        listener.join(WAIT_S)
    assert not listener.is_alive()
    recorder.tick(1000)

    events = list(Event.objects.filter(kind="xid").order_by("xid"))
    assert [(e.xid, e.gpu_index, e.gpu_uuid, e.message) for e in events] == [
        (48, 0, UUID0, "XID 48"),
        (79, 1, UUID1, "XID 79"),
    ]
    made = fake_nvml.EVENT_SETS[first_set:]
    assert made and all(event_set.freed for event_set in made)


def test_xid_registration_not_supported_is_said_once(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvml.STATE.events_error = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    recorder = make(fake_nvml)

    def said() -> list[str]:
        messages = [r.getMessage() for r in list(caplog.records)]
        return [m for m in messages if "XID events are not recorded" in m]

    with caplog.at_level(logging.INFO, logger="gpu_monitor.history"):
        listener = threading.Thread(
            target=recorder.sampler.listen_for_xid, args=(recorder.stopping,), name="gpu-xid"
        )
        listener.start()
        try:
            wait_for(lambda: bool(said()), WAIT_S)  # it tried, failed and said so
        finally:
            recorder.stop()
            listener.join(WAIT_S)
        assert not listener.is_alive()
        recorder.tick(1000)

    assert said() == ["XID events are not recorded: GPU 0: Not Supported; GPU 1: Not Supported"]
    assert Sample.objects.count() == 2  # recording goes on without them


def test_retention_deletes_old_rows_in_batches(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "RETENTION_BATCH", 7)
    recorder = make(fake_nvml, retention_s=100)
    recorder.retention.last_run = 10**9  # no pruning while the rows are made
    for epoch in range(0, 200, 10):  # 20 ticks x 2 GPUs
        recorder.tick(epoch)
    make(fake_nvml, host="other").tick(0)
    Event.objects.create(host="node-1", epoch=5, timestamp=moment(5), kind="xid", xid=79)
    recorder.retention.last_run = 0

    with CaptureQueriesContext(connection) as queries:
        recorder.tick(200)  # 200 - 0 >= a minute: prune everything before 100

    assert min(Sample.objects.filter(host="node-1").values_list("epoch", flat=True)) == 100
    assert Sample.objects.filter(host="other").count() == 2  # another host's rows stay
    assert not Event.objects.filter(epoch__lt=100).exists()
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) >= 3  # 20 old rows in batches of at most 7
    assert all("LIMIT 7" in sql for sql in deletes)


def test_retention_runs_at_most_once_a_minute(fake_nvml: ModuleType) -> None:
    recorder = make(fake_nvml, retention_s=1)
    with CaptureQueriesContext(connection) as queries:
        for epoch in range(1000, 1060, 10):
            recorder.tick(epoch)

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # samples, rollups, events: at 1000 only


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("12h", 43200), ("30m", 1800), ("90s", 90), ("15", 15), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-1h", "1y", "abc", "", "9" * 5000])
def test_bad_durations(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_periods_that_are_over_are_rolled_up(fake_nvml: ModuleType) -> None:
    recorder = make(fake_nvml)
    gpu = fake_nvml.STATE.gpus[0]
    for n, epoch in enumerate(range(1200, 1800, 10)):  # two periods of 300 s, 30 ticks each
        gpu.utilization_gpu, gpu.temperature = n % 10, 30 + n
        recorder.tick(epoch)

    assert list(Rollup.objects.values_list("epoch", flat=True).distinct()) == [1200]
    recorder.tick(1800)  # a third period starts: the second is over
    rollups = {(r.gpu_index, r.epoch): r for r in Rollup.objects.order_by("gpu_index", "epoch")}
    assert sorted(rollups) == [(0, 1200), (0, 1500), (1, 1200), (1, 1500)]
    first = rollups[(0, 1200)]
    assert (first.utilization_sum, first.utilization_count, first.utilization_max) == (
        135,  # 0..9 three times
        30,
        9,
    )
    assert (first.temperature_max, first.total_memory_max) == (59, 81559)
    assert first.power_count == 30 and round(first.power_sum, 2) == round(30 * 71.07, 2)
    assert rollups[(0, 1500)].temperature_max == 89


def test_a_restarted_recorder_rolls_up_what_an_earlier_run_left(fake_nvml: ModuleType) -> None:
    first = make(fake_nvml)
    for epoch in range(1200, 1400, 10):
        first.tick(epoch)
    assert not Rollup.objects.exists()  # the period was not over yet

    second = make(fake_nvml, clock=lambda: 2000.5)
    second.run(once=True)

    assert set(Rollup.objects.values_list("epoch", flat=True)) == {1200}
    assert Rollup.objects.get(gpu_index=0, epoch=1200).utilization_count == 20
