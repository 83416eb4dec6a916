"""Processes per GPU: NVML's lists (fake pynvml), host details (real psutil on this
machine's own processes), the API and its permissions."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import io
import os
import subprocess
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from unittest import mock

import psutil
import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from gpu_monitor import host
from gpu_monitor.manager import GPUManager
from gpu_monitor.types import GPUProcess

MIB = 1024 * 1024
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}
SHOWN = {**OPEN, "PROCESS_COMMAND_LINE": True}


@pytest.fixture
def admin(db: None) -> User:
    return User.objects.create_superuser("root", password="s3cret-pass")


@pytest.fixture
def root_namespace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a host (or a container with --pid=host), whatever this machine is."""
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    yield


def procs(fake_nvml: ModuleType, gpu: int, *processes: object) -> None:
    fake_nvml.STATE.gpus[gpu].processes = list(processes)


# -- NVML's side ----------------------------------------------------------------------


def test_load_capture_matches_nvidia_smi(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="load")

    processes, errors = GPUManager().get_processes()

    # nvidia-smi --query-compute-apps: 11327 2566 MiB, 11328 1542 MiB, 11345 15690 MiB;
    # pmon: gpu_burn at 99% SM and 10% memory, the memhogs without a sample.
    assert errors == {}
    assert [(p.pid, p.used_memory_mb, p.type) for p in processes] == [
        (11345, 15690, "compute"),
        (11327, 2566, "compute"),
        (11328, 1542, "compute"),
    ]
    assert (processes[0].sm_utilization_percent, processes[0].memory_utilization_percent) == (
        99,
        10,
    )
    assert processes[1].sm_utilization_percent is None
    assert (
        processes[1]
        .field_errors["sm_utilization_percent"]
        .startswith("No utilization sample in the last 5 s")
    )
    assert processes[0].gpu_uuid == "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"
    assert (processes[0].gpu_instance_id, processes[0].mig_uuid) == (None, None)


def test_compute_graphics_and_both(fake_nvml: ModuleType) -> None:
    fake = fake_nvml.FakeProcess
    procs(
        fake_nvml,
        0,
        fake(100, 10 * MIB),
        fake(200, 20 * MIB, graphics=True, compute=False),
        fake(300, 30 * MIB, graphics=True),
    )

    processes, _ = GPUManager().get_processes(0)

    assert [(p.pid, p.type) for p in processes] == [
        (300, "compute+graphics"),
        (200, "graphics"),
        (100, "compute"),
    ]


def test_memory_not_available_is_null_with_reason(fake_nvml: ModuleType) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(100, None), fake_nvml.FakeProcess(200, 5 * MIB))

    processes, _ = GPUManager().get_processes(0)

    assert [(p.pid, p.used_memory_mb) for p in processes] == [(200, 5), (100, None)]
    assert processes[1].field_errors["used_memory_mb"].startswith("Not available")


def test_memory_rounds_up_to_mib_like_the_devices(fake_nvml: ModuleType) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(100, 5 * MIB + 1))

    assert GPUManager().get_processes(0)[0][0].used_memory_mb == 6


def test_graphics_entry_supplies_memory_compute_lacks(fake_nvml: ModuleType) -> None:
    fake = fake_nvml.FakeProcess
    procs(fake_nvml, 0, fake(100, None), fake(100, 7 * MIB, graphics=True, compute=False))

    (process,) = GPUManager().get_processes(0)[0]

    assert (process.type, process.used_memory_mb) == ("compute+graphics", 7)


def test_invalid_pids_are_skipped(fake_nvml: ModuleType) -> None:
    fake = fake_nvml.FakeProcess
    procs(fake_nvml, 0, fake(0, MIB), fake(0xFFFFFFFF, MIB), fake(42, MIB))

    assert [p.pid for p in GPUManager().get_processes(0)[0]] == [42]


def test_mig_processes_carry_their_slice(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")

    processes, errors = GPUManager().get_processes()

    # nvidia-smi: GI 2, CI 1 for all three; no per-process utilisation under MIG.
    assert errors == {}
    assert [(p.pid, p.used_memory_mb) for p in processes] == [
        (12267, 13526),
        (12249, 2194),
        (12250, 1170),
    ]
    assert {(p.gpu_instance_id, p.compute_instance_id) for p in processes} == {(2, 1)}
    assert {p.mig_uuid for p in processes} == {"MIG-00000001-0000-0000-0000-000000000001"}
    assert processes[0].field_errors["sm_utilization_percent"] == (
        "Not reported on a MIG-enabled GPU by NVML"
    )
    assert fake_nvml.CALLS["nvmlDeviceGetProcessUtilization"] == 0


def test_rows_are_frozen_dataclasses_with_every_field(fake_nvml: ModuleType) -> None:
    """The manager makes each row through ``GPUProcess``: every field is there, in
    order, the row equals one made from its fields, and it is frozen."""
    fake_nvml.configure(gpus=2, scenario="mig")
    fake_nvml.STATE.gpus[1].processes = [fake_nvml.FakeProcess(7, None)]
    rows, _ = GPUManager().get_processes()
    names = [f.name for f in dataclasses.fields(GPUProcess)]

    for row in rows:
        assert list(vars(row)) == names
        assert row == GPUProcess(**{name: getattr(row, name) for name in names})
    assert len(rows) == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows[0].pid = 1  # type: ignore[misc]


def test_old_samples_do_not_count(fake_nvml: ModuleType) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(100, MIB))
    fake_nvml.STATE.gpus[0].samples = [fake_nvml.FakeSample(100, 80, 5, age_s=30)]

    (process,) = GPUManager().get_processes(0)[0]

    assert process.sm_utilization_percent is None


def test_latest_sample_wins(fake_nvml: ModuleType) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(100, MIB))
    fake_nvml.STATE.gpus[0].samples = [
        fake_nvml.FakeSample(100, 10, 1, age_s=3),
        fake_nvml.FakeSample(100, 60, 6, age_s=1),
        fake_nvml.FakeSample(100, 30, 3, age_s=2),
    ]

    (process,) = GPUManager().get_processes(0)[0]

    assert (process.sm_utilization_percent, process.memory_utilization_percent) == (60, 6)


def test_utilization_error_is_the_reason(fake_nvml: ModuleType) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(100, MIB))
    fake_nvml.STATE.gpus[0].errors["process_utilization"] = fake_nvml.NVML_ERROR_NO_PERMISSION

    (process,) = GPUManager().get_processes(0)[0]

    assert process.field_errors["sm_utilization_percent"] == "Insufficient Permissions"
    assert process.used_memory_mb == 1


def test_driver_before_510_uses_the_v2_functions(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=1, scenario="load")
    fake_nvml.STATE.processes_v3 = False

    processes, errors = GPUManager().get_processes()

    assert (len(processes), errors) == (3, {})
    assert fake_nvml.CALLS["nvmlDeviceGetComputeRunningProcesses_v2"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetGraphicsRunningProcesses_v2"] == 1


def test_a_lost_gpu_is_named_and_hides_no_other(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3, scenario="lost")
    for gpu in fake_nvml.STATE.gpus:
        gpu.processes = [fake_nvml.FakeProcess(100, MIB)]

    processes, errors = GPUManager().get_processes()

    assert [p.gpu_index for p in processes] == [0, 1]
    assert errors == {"2": "GPU is lost"}


def test_list_failure_is_named(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.gpus[1].errors["processes_compute"] = fake_nvml.NVML_ERROR_NO_PERMISSION

    _, errors = GPUManager().get_processes()

    assert errors == {"1": "Insufficient Permissions"}


def test_without_nvml_no_processes(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND

    assert GPUManager().get_processes() == ([], {})


# -- the host's side ------------------------------------------------------------------


def test_host_details_of_a_real_process(fake_nvml: ModuleType, root_namespace: None) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(os.getpid(), 300 * MIB))
    (process,) = GPUManager().get_processes(0)[0]

    (described,) = host.describe([process], seen_at=time.time(), command_line=True)

    me = psutil.Process()
    assert described.username == getpass.getuser()
    assert described.name == me.name()
    assert described.command_line == me.cmdline()
    assert described.host_memory_mb is not None and described.host_memory_mb > 0
    assert described.started_at is not None and described.started_at.endswith("Z")
    assert described.used_memory_mb == 300
    assert set(described.field_errors) <= {"sm_utilization_percent", "memory_utilization_percent"}


def test_command_line_hidden_unless_asked(fake_nvml: ModuleType, root_namespace: None) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(os.getpid(), MIB))
    (process,) = GPUManager().get_processes(0)[0]

    (described,) = host.describe([process], seen_at=time.time(), command_line=False)

    assert described.command_line is None
    assert described.field_errors["command_line"] == host.HIDDEN
    assert described.username == getpass.getuser()


def test_a_pid_that_ended_is_said_so(fake_nvml: ModuleType, root_namespace: None) -> None:
    with mock.patch.object(psutil, "Process", side_effect=psutil.NoSuchProcess(4242)):
        (described,) = host.describe(
            [own_process(fake_nvml, 4242)], seen_at=time.time(), command_line=True
        )

    assert described.username is None
    assert described.field_errors["username"] == host.ENDED
    assert described.used_memory_mb == 1  # NVML's fields stay


def own_process(fake_nvml: ModuleType, pid: int) -> object:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(pid, MIB))
    return GPUManager().get_processes(0)[0][0]


def test_missing_pid_in_a_container_is_not_visible(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", True)
    with mock.patch.object(psutil, "Process", side_effect=psutil.NoSuchProcess(4242)):
        (described,) = host.describe(
            [own_process(fake_nvml, 4242)], seen_at=time.time(), command_line=True
        )

    assert described.field_errors["name"] == (
        "not visible from this PID namespace; run with --pid=host"
    )


def test_a_pid_reused_after_the_listing_is_never_attributed(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    """The pid exists, but its process started after NVML listed the pid: someone else."""
    process = own_process(fake_nvml, os.getpid())

    (described,) = host.describe(
        [process], seen_at=psutil.Process().create_time() - 60, command_line=True
    )

    assert (described.username, described.name, described.command_line) == (None, None, None)
    assert described.field_errors["username"] == host.NOT_VISIBLE


def test_in_a_child_namespace_a_pid_without_gpu_mappings_is_not_attributed(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a container NVML's host pid may name an unrelated local process: this test
    process has no /dev/nvidia* mapped, so it must not be taken for the GPU's user."""
    monkeypatch.setattr(host, "CHILD_NAMESPACE", True)

    (described,) = host.describe(
        [own_process(fake_nvml, os.getpid())], seen_at=time.time(), command_line=True
    )

    assert described.username is None
    assert described.field_errors["username"] == host.NOT_VISIBLE


def test_in_a_child_namespace_a_pid_with_gpu_mappings_is_attributed(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the check above: a local process that has an NVIDIA device
    mapped is the GPU's user, seen from a container too."""
    monkeypatch.setattr(host, "CHILD_NAMESPACE", True)
    with open("/proc/self/maps") as maps:
        mapped = maps.read() + "7f1e2c000000-7f1e2c200000 rw-s 00000000 00:05 1043 /dev/nvidia0\n"
    real_open = open

    def open_maps(path: str, *args: Any, **kwargs: Any) -> Any:
        if path == f"/proc/{os.getpid()}/maps":
            return io.StringIO(mapped)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(host, "open", open_maps, raising=False)

    (described,) = host.describe(
        [own_process(fake_nvml, os.getpid())], seen_at=time.time(), command_line=True
    )

    assert described.username == getpass.getuser()
    assert described.command_line == psutil.Process().cmdline()
    assert "username" not in described.field_errors


class HostProcess:
    """A psutil.Process of a made-up host, for what this machine cannot stage (a pid
    the kernel gives to another process within a second)."""

    def __init__(self, pid: int, user: str, command: list[str], started: float) -> None:
        self.pid, self.user, self.command, self.started = pid, user, command, started
        self.exit_pipe: tuple[int, int] | None = None  # its "pidfd": readable once it ended
        self.ended = False

    def __eq__(self, other: object) -> bool:  # as psutil's: the same pid and start
        if not isinstance(other, HostProcess):
            return NotImplemented
        return (self.pid, self.started) == (other.pid, other.started)

    def __hash__(self) -> int:
        return hash((self.pid, self.started))

    def create_time(self) -> float:
        return self.started

    def username(self) -> str:
        return self.user

    def name(self) -> str:
        return self.command[0]

    def cmdline(self) -> list[str]:
        return self.command

    def memory_info(self) -> object:
        return mock.Mock(rss=64 * MIB)

    def oneshot(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def pidfd(self) -> int:
        """A descriptor that, as a pidfd does, becomes readable when this process ends."""
        if self.exit_pipe is None:
            self.exit_pipe = os.pipe()
            if self.ended:
                self.end()
        return os.dup(self.exit_pipe[0])

    def end(self) -> None:
        self.ended = True
        if self.exit_pipe is not None:
            os.write(self.exit_pipe[1], b"x")


class HostTable(dict[int, HostProcess]):
    """The host's processes by pid: replacing or deleting one ends it, as a pid is only
    given to another process once its process has exited."""

    def __setitem__(self, pid: int, process: HostProcess) -> None:
        if pid in self and self[pid] is not process:
            self[pid].end()
        super().__setitem__(pid, process)

    def __delitem__(self, pid: int) -> None:
        self[pid].end()
        super().__delitem__(pid)


@pytest.fixture(params=["pidfd", "no pidfd"])
def host_table(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HostTable]:
    """The host's processes by pid, as psutil.Process sees them; each test runs with
    pidfds (as on Linux 5.3+) and without (psutil's identity check instead)."""
    table = HostTable()
    processes: list[HostProcess] = []

    def process(pid: int) -> HostProcess:
        if pid not in table:
            raise psutil.NoSuchProcess(pid)
        return table[pid]

    def pidfd(pid: int) -> int | None:
        if request.param == "no pidfd" or pid not in table:
            return None
        processes.append(table[pid])
        return table[pid].pidfd()

    monkeypatch.setattr(psutil, "Process", process)
    monkeypatch.setattr(host, "open_pidfd", pidfd)
    monkeypatch.setattr(host, "pid_taken", lambda pid: pid in table)
    yield table
    host.forget()  # closes the host's descriptors
    for pipe in {p.exit_pipe for p in processes if p.exit_pipe is not None}:
        os.close(pipe[0])
        os.close(pipe[1])


def test_a_recycled_pid_gets_the_new_process_details_within_the_cache_time(
    fake_nvml: ModuleType, root_namespace: None, host_table: HostTable
) -> None:
    """The pid of an ended process, reused by another user's process a second later:
    the cached user and command line must not carry over to it."""
    process = own_process(fake_nvml, 4242)
    host_table[4242] = HostProcess(4242, "alice", ["train.py", "--epochs=3"], started=1000.0)
    (first,) = host.describe([process], seen_at=2000.0, command_line=True)
    host_table[4242] = HostProcess(4242, "bob", ["serve.py"], started=2000.2)

    (second,) = host.describe([process], seen_at=2001.0, command_line=True)

    assert (first.username, first.command_line) == ("alice", ["train.py", "--epochs=3"])
    assert (second.username, second.name, second.command_line) == ("bob", "serve.py", ["serve.py"])
    assert second.started_at == "1970-01-01T00:33:20Z"


def test_a_pid_that_ended_within_the_cache_time_is_said_so(
    fake_nvml: ModuleType, root_namespace: None, host_table: HostTable
) -> None:
    process = own_process(fake_nvml, 4242)
    host_table[4242] = HostProcess(4242, "alice", ["train.py"], started=1000.0)
    host.describe([process], seen_at=2000.0, command_line=True)
    del host_table[4242]

    (described,) = host.describe([process], seen_at=2000.5, command_line=True)

    assert described.username is None
    assert described.field_errors["username"] == host.ENDED


def test_the_same_process_within_the_cache_time_is_not_read_again(
    fake_nvml: ModuleType, root_namespace: None, host_table: HostTable
) -> None:
    process = own_process(fake_nvml, 4242)
    host_table[4242] = HostProcess(4242, "alice", ["train.py"], started=1000.0)
    host.describe([process], seen_at=2000.0, command_line=True)

    with mock.patch.object(host, "look_up", wraps=host.look_up) as look_up:
        (within,) = host.describe([process], seen_at=2001.5, command_line=True)
        after_window = look_up.call_count
        host.describe([process], seen_at=2002.5, command_line=True)

    assert within.username == "alice"
    assert after_window == 0
    assert look_up.call_count == 1


def test_a_real_process_is_reused_within_the_cache_time(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    """psutil's own process identity (pid and start time) keeps a living process's
    details cached: the check costs no second lookup."""
    process = own_process(fake_nvml, os.getpid())
    now = time.time()
    host.describe([process], seen_at=now, command_line=True)

    with mock.patch.object(host, "look_up", wraps=host.look_up) as look_up:
        (described,) = host.describe([process], seen_at=now + 1, command_line=True)

    assert look_up.call_count == 0
    assert described.username == getpass.getuser()


needs_pidfd = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd here")


@needs_pidfd
def test_a_living_process_is_reused_without_reading_proc(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    """Its pidfd has not signalled an exit, which proves the pid still names it: no
    per-pid psutil identity check (a /proc read each) on a cache hit."""
    process = own_process(fake_nvml, os.getpid())
    now = time.time()
    host.describe([process], seen_at=now, command_line=True)

    with mock.patch.object(psutil, "Process", side_effect=AssertionError("read /proc")):
        (described,) = host.describe([process], seen_at=now + 1, command_line=True)

    assert described.username == getpass.getuser()


@needs_pidfd
def test_a_real_process_that_exits_is_looked_up_again_within_the_cache_time(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        process = own_process(fake_nvml, child.pid)
        now = time.time()
        (first,) = host.describe([process], seen_at=now, command_line=True)
    finally:
        child.kill()
        child.wait()

    (second,) = host.describe([process], seen_at=now + 0.5, command_line=True)

    assert first.name == "sleep"
    assert second.username is None
    assert second.field_errors["username"] == host.ENDED


@needs_pidfd
def test_pidfds_of_pids_no_longer_listed_are_closed(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    """Judged by the descriptors host opens and closes (a count of the process's open
    files moves with whatever else the test process does)."""
    opened: list[int] = []

    def pidfd_open(pid: int) -> int:
        opened.append(os.pidfd_open(pid))
        return opened[-1]

    process = own_process(fake_nvml, os.getpid())
    now = time.time()
    with mock.patch.object(host, "_pidfd_open", pidfd_open):
        host.describe([process], seen_at=now, command_line=True)
    assert len(opened) == 1
    os.fstat(opened[0])  # open while its pid is cached

    with mock.patch.object(host.os, "close", wraps=os.close) as close:
        host.describe([], seen_at=now + host.RecentDetails.SECONDS + 0.1, command_line=True)

    close.assert_any_call(opened[0])


@needs_pidfd
def test_past_max_pidfds_the_identity_check_takes_over(
    fake_nvml: ModuleType, root_namespace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host.ExitWatch, "MAX", 1)
    procs(fake_nvml, 0, fake_nvml.FakeProcess(os.getpid(), MIB))
    procs(fake_nvml, 1, fake_nvml.FakeProcess(os.getppid(), MIB))
    listed, _ = GPUManager().get_processes()
    now = time.time()
    with mock.patch.object(host, "_pidfd_open", wraps=host._pidfd_open) as pidfd_open:
        host.describe(listed, seen_at=now, command_line=True)

    with (
        mock.patch.object(host, "look_up", wraps=host.look_up) as look_up,
        mock.patch.object(host, "process_now", wraps=host.process_now) as identity_checks,
    ):
        described = host.describe(listed, seen_at=now + 1, command_line=True)

    assert pidfd_open.call_count == 1  # MAX: the second pid is watched without one
    assert (look_up.call_count, identity_checks.call_count) == (0, 1)
    assert [p.username for p in described] == [getpass.getuser()] * 2


def test_a_pid_without_a_process_is_checked_by_its_lookup_alone(
    fake_nvml: ModuleType,
    root_namespace: None,
    host_table: HostTable,
) -> None:
    """A pid that had no process stays cached while none takes it (kill(2) with signal
    0, not a psutil lookup), and is looked up again once one does."""
    listed = own_process(fake_nvml, 4242)
    host.describe([listed], seen_at=2000.0, command_line=True)

    with (
        mock.patch.object(host, "look_up", wraps=host.look_up) as look_up,
        mock.patch.object(host, "process_now", wraps=host.process_now) as identity_checks,
    ):
        (still,) = host.describe([listed], seen_at=2000.5, command_line=True)
        before = (look_up.call_count, identity_checks.call_count)
        host_table[4242] = HostProcess(4242, "bob", ["serve.py"], started=2000.6)
        (taken,) = host.describe([listed], seen_at=2000.7, command_line=True)

    assert (before, look_up.call_count) == ((0, 0), 1)
    assert (still.username, still.field_errors["username"]) == (None, host.ENDED)
    assert taken.username == "bob"


def test_a_pid_above_any_pid_t_is_said_to_have_ended(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    """Drivers 535.43 to 535.85 listed garbage pids; one too large for pid_t must not
    break the pidfd or the kill(2) check, cold or cached."""
    listed = own_process(fake_nvml, 2**32 - 2)

    rows = [host.describe([listed], seen_at=time.time(), command_line=True)[0] for _ in "ab"]

    assert [row.field_errors["username"] for row in rows] == [host.ENDED] * 2


def test_pid_taken_asks_the_kernel() -> None:
    child = subprocess.Popen(["sleep", "30"])
    taken = host.pid_taken(child.pid)
    child.kill()
    child.wait()

    assert (taken, host.pid_taken(child.pid), host.pid_taken(1)) == (True, False, True)


def test_without_pidfd_open_there_is_no_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    assert host.open_pidfd(2**22 + 1) is None  # above any pid_max: no such process
    monkeypatch.setattr(host, "_pidfd_open", host._no_pidfd)

    assert host.open_pidfd(os.getpid()) is None


@pytest.mark.parametrize(
    "errors", [{}, {"username": host.DENIED, "command_line": host.HIDDEN}], ids=["none", "some"]
)
def test_with_host_equals_dataclasses_replace(
    fake_nvml: ModuleType, errors: dict[str, str]
) -> None:
    fake_nvml.configure(gpus=1, scenario="load")
    process = GPUManager().get_processes(0)[0][-1]
    fields = {"name": "python3", "host_memory_mb": 12, "started_at": "2026-01-01T00:00:00Z"}

    described = host.with_host(process, fields, errors)

    assert process.field_errors  # no utilisation sample: the NVML side has errors too
    assert described == dataclasses.replace(
        process, **fields, field_errors={**process.field_errors, **errors}
    )
    assert list(described.field_errors) == [*process.field_errors, *errors]
    assert (described.pid, process.name) == (process.pid, None)  # the original is unchanged


def test_only_the_named_gpus_and_their_errors(fake_nvml: ModuleType) -> None:
    fake_nvml.configure(gpus=3, scenario="load")
    fake_nvml.STATE.gpus[0].errors["processes_compute"] = fake_nvml.NVML_ERROR_NO_PERMISSION
    fake_nvml.STATE.gpus[2].errors["processes_compute"] = fake_nvml.NVML_ERROR_UNKNOWN

    response = host.processes(GPUManager(), command_line=False, only={1, 2})

    assert {p.gpu_index for p in response.processes} == {1}
    assert response.count == 3
    assert response.gpu_errors == {"2": "Unknown Error"}


@pytest.mark.parametrize(
    ("delay", "attributed"), [(0.3, True), (host.START_SLACK_S, True), (0.51, False)]
)
def test_a_process_that_started_just_after_the_listing_is_within_the_slack(
    fake_nvml: ModuleType,
    root_namespace: None,
    host_table: HostTable,
    delay: float,
    attributed: bool,
) -> None:
    """psutil's start times are precise to about 10 ms, so up to START_SLACK_S after
    NVML listed a pid is still the listed process; later is another one."""
    host_table[4242] = HostProcess(4242, "alice", ["train.py"], started=2000.0 + delay)

    (described,) = host.describe([own_process(fake_nvml, 4242)], seen_at=2000.0, command_line=True)

    assert described.username == ("alice" if attributed else None)


def test_in_a_child_namespace_unreadable_maps_are_not_trusted(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", True)
    monkeypatch.setattr(host, "open", mock.Mock(side_effect=PermissionError), raising=False)

    (described,) = host.describe(
        [own_process(fake_nvml, os.getpid())], seen_at=time.time(), command_line=True
    )

    assert described.username is None
    assert described.field_errors["username"] == host.NOT_VISIBLE


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (psutil.ZombieProcess(4242), host.ZOMBIE),
        (psutil.NoSuchProcess(4242), host.ENDED),
        (psutil.AccessDenied(4242), host.DENIED),
        (psutil.TimeoutExpired(5, pid=4242), "TimeoutExpired: timeout after 5 seconds (pid=4242)"),
    ],
)
def test_each_psutil_failure_of_a_field_says_why(
    fake_nvml: ModuleType,
    root_namespace: None,
    host_table: HostTable,
    error: Exception,
    reason: str,
) -> None:
    process = HostProcess(4242, "alice", ["train.py"], started=1000.0)
    process.memory_info = mock.Mock(side_effect=error)  # type: ignore[method-assign]
    host_table[4242] = process

    (described,) = host.describe([own_process(fake_nvml, 4242)], seen_at=2000.0, command_line=True)

    assert described.host_memory_mb is None
    assert described.field_errors["host_memory_mb"] == reason
    assert described.username == "alice"


def test_a_command_line_that_could_not_be_read_keeps_its_reason_when_hidden(
    fake_nvml: ModuleType, root_namespace: None, host_table: HostTable
) -> None:
    process = HostProcess(4242, "alice", ["train.py"], started=1000.0)
    process.cmdline = mock.Mock(side_effect=psutil.AccessDenied(4242))  # type: ignore[method-assign]
    host_table[4242] = process

    (described,) = host.describe([own_process(fake_nvml, 4242)], seen_at=2000.0, command_line=False)

    assert described.field_errors["command_line"] == host.DENIED


def test_a_process_that_outlives_the_cache_time_is_not_read_whole_again(
    fake_nvml: ModuleType, root_namespace: None, host_table: HostTable
) -> None:
    """After the recent cache expires, the same process (same start time) keeps its
    user, name, command line and start; only its memory is read again."""
    process = HostProcess(4242, "alice", ["train.py", "-v"], started=1000.0)
    host_table[4242] = process
    listed = own_process(fake_nvml, 4242)
    (first,) = host.describe([listed], seen_at=2000.0, command_line=True)
    process.username = mock.Mock(side_effect=AssertionError("read again"))  # type: ignore[method-assign]
    process.memory_info = mock.Mock(return_value=mock.Mock(rss=96 * MIB))  # type: ignore[method-assign]

    (later,) = host.describe([listed], seen_at=2010.0, command_line=True)

    assert (later.username, later.name, later.command_line) == (
        "alice",
        "train.py",
        ["train.py", "-v"],
    )
    assert later.started_at == first.started_at == "1970-01-01T00:16:40Z"
    assert (first.host_memory_mb, later.host_memory_mb) == (64, 96)
    assert set(later.field_errors) <= {"sm_utilization_percent", "memory_utilization_percent"}


def test_a_pid_denied_at_lookup_is_not_looked_up_again_within_the_cache_time(
    fake_nvml: ModuleType, root_namespace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(psutil, "Process", mock.Mock(side_effect=psutil.AccessDenied(4242)))
    listed = own_process(fake_nvml, 4242)
    host.describe([listed], seen_at=2000.0, command_line=True)

    with mock.patch.object(host, "look_up", wraps=host.look_up) as look_up:
        (described,) = host.describe([listed], seen_at=2001.0, command_line=True)

    assert look_up.call_count == 0
    assert described.field_errors["username"] == host.DENIED


def test_the_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch, host_table: HostTable) -> None:
    """At MAX_PIDS the recent cache drops what is too old to be used (older than
    SECONDS); the static cache starts again."""
    monkeypatch.setattr(host.StaticDetails, "MAX_PIDS", 3)
    recent, static = host.RecentDetails(), host.StaticDetails()
    for pid, at in enumerate((999.5, 1000.0, 1001.0)):
        recent.put(pid, at, None, {"name": str(pid)}, {})
        static.get(HostProcess(pid, "u", [str(pid)], started=1.0), 1.0)
    recent.put(3, 1002.0, None, {"name": "3"}, {})
    static.get(HostProcess(3, "u", ["3"], started=1.0), 1.0)

    assert sorted(recent._by_pid) == [1, 2, 3]
    assert recent.get([1], 1002.0)[1].shown == ({"name": "1"}, {})  # SECONDS old: still used
    assert recent.get([1], 1002.01) == {}
    assert len(static._by_pid) == 1


def test_namespace_detection_reads_nspid() -> None:
    status = "Name:\tpython\nNSpid:\t4242\t17\n"
    with mock.patch("builtins.open", mock.mock_open(read_data=status)) as opened:
        assert host.in_child_pid_namespace() is True
    opened.assert_called_once_with("/proc/self/status")
    with mock.patch("builtins.open", mock.mock_open(read_data="NSpid:\t4242\n")):
        assert host.in_child_pid_namespace() is False
    with mock.patch("builtins.open", side_effect=OSError):
        assert host.in_child_pid_namespace() is False


def test_another_users_process_denies_some_fields(
    fake_nvml: ModuleType, root_namespace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = psutil.AccessDenied(os.getpid())
    monkeypatch.setattr(psutil.Process, "cmdline", mock.Mock(side_effect=denied))
    monkeypatch.setattr(psutil.Process, "memory_info", mock.Mock(side_effect=denied))

    (described,) = host.describe(
        [own_process(fake_nvml, os.getpid())], seen_at=time.time(), command_line=True
    )

    assert described.username == getpass.getuser()
    assert (described.command_line, described.host_memory_mb) == (None, None)
    assert described.field_errors["command_line"] == "access denied (another user's process)"
    assert described.field_errors["host_memory_mb"] == "access denied (another user's process)"


def test_access_denied_at_lookup_guesses_nothing(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    with mock.patch.object(psutil, "Process", side_effect=psutil.AccessDenied(1)):
        (described,) = host.describe(
            [own_process(fake_nvml, 1)], seen_at=time.time(), command_line=True
        )

    assert described.field_errors["name"] == "access denied (another user's process)"


def test_without_psutil_the_nvml_fields_remain(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "psutil", None)

    (described,) = host.describe(
        [own_process(fake_nvml, os.getpid())], seen_at=time.time(), command_line=True
    )

    assert described.used_memory_mb == 1
    assert described.username is None
    assert described.field_errors["username"] == (
        "psutil is not installed: pip install gpu-monitor[processes]"
    )


def test_a_pid_on_several_gpus_is_looked_up_once(
    fake_nvml: ModuleType, root_namespace: None
) -> None:
    for gpu in fake_nvml.STATE.gpus:
        gpu.processes = [fake_nvml.FakeProcess(os.getpid(), MIB)]
    processes, _ = GPUManager().get_processes()

    with mock.patch.object(host, "look_up", wraps=host.look_up) as look_up:
        described = host.describe(processes, seen_at=time.time(), command_line=False)

    assert [p.gpu_index for p in described] == [0, 1]
    assert look_up.call_count == 1
    assert described[0].username == described[1].username == getpass.getuser()


# -- the API --------------------------------------------------------------------------


def test_anonymous_on_an_open_install_sees_gpus_not_processes(
    fake_nvml: ModuleType, client: Client
) -> None:
    assert client.get("/api/gpu/devices").status_code == 200
    for path in ("/api/gpu/processes", "/api/gpu/devices/0/processes"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "pid" not in response.content.decode()


def test_normal_user_sees_no_processes(fake_nvml: ModuleType, client: Client, db: None) -> None:
    client.force_login(User.objects.create_user("alice", password="pw-alice-123"))

    assert client.get("/api/gpu/processes").status_code == 403


def test_admin_sees_processes(
    fake_nvml: ModuleType, client: Client, admin: User, root_namespace: None
) -> None:
    procs(fake_nvml, 1, fake_nvml.FakeProcess(os.getpid(), 512 * MIB))
    client.force_login(admin)

    body = client.get("/api/gpu/processes").json()

    assert body["count"] == 1 and body["gpu_errors"] == {}
    (process,) = body["processes"]
    assert list(process) == [
        "gpu_index",
        "gpu_uuid",
        "pid",
        "type",
        "used_memory_mb",
        "sm_utilization_percent",
        "memory_utilization_percent",
        "username",
        "name",
        "command_line",
        "host_memory_mb",
        "started_at",
        "gpu_instance_id",
        "compute_instance_id",
        "mig_uuid",
        "field_errors",
    ]
    assert (process["gpu_index"], process["pid"], process["used_memory_mb"]) == (
        1,
        os.getpid(),
        512,
    )
    assert process["username"] == getpass.getuser()
    assert process["command_line"] is None  # hidden by default, even for admins
    assert process["field_errors"]["command_line"] == host.HIDDEN


def test_command_line_shown_when_the_project_says_so(
    fake_nvml: ModuleType, client: Client, root_namespace: None
) -> None:
    procs(fake_nvml, 0, fake_nvml.FakeProcess(os.getpid(), MIB))
    with override_settings(GPU_MONITOR=SHOWN):
        (process,) = client.get("/api/gpu/processes").json()["processes"]

    assert process["command_line"] == psutil.Process().cmdline()


def test_process_permission_adds_to_the_gpu_permission(
    fake_nvml: ModuleType, client: Client
) -> None:
    """Opening processes does not open what PERMISSION_CLASSES locks."""
    locked = {**OPEN, "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}
    with override_settings(GPU_MONITOR=locked):
        assert client.get("/api/gpu/processes").status_code == 403
    with override_settings(GPU_MONITOR=OPEN):
        assert client.get("/api/gpu/processes").status_code == 200


def test_device_processes_by_index_and_uuid(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="mig")
    procs(fake_nvml, 1, fake_nvml.FakeProcess(77, MIB))
    with override_settings(GPU_MONITOR=OPEN):
        by_index = client.get("/api/gpu/devices/1/processes").json()
        by_uuid = client.get(
            "/api/gpu/devices/GPU-3a34af56-e2e8-164a-8e46-000000000001/processes/"
        ).json()
        by_mig = client.get(
            "/api/gpu/devices/MIG-00000002-0000-0000-0000-000000000002/processes"
        ).json()

    assert [p["pid"] for p in by_index["processes"]] == [77]
    assert by_uuid == by_index
    assert [p["pid"] for p in by_mig["processes"]] == [12267, 12249, 12250]  # GPU 0's


@pytest.mark.parametrize("key", ["2", "GPU-00000000-0000-0000-0000-000000000000", "x", "9" * 5000])
def test_device_processes_of_an_unknown_gpu_is_404(
    fake_nvml: ModuleType, client: Client, key: str
) -> None:
    with override_settings(GPU_MONITOR=OPEN):
        response = client.get(f"/api/gpu/devices/{key}/processes")

    assert response.status_code == 404
    assert list(response.json()) == ["detail"]


def test_processes_without_nvml_is_empty_200(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with override_settings(GPU_MONITOR=OPEN):
        response = client.get("/api/gpu/processes")

    assert response.status_code == 200
    assert response.json() == {"processes": [], "count": 0, "gpu_errors": {}}


@pytest.mark.parametrize(
    "setting",
    [
        {"PROCESS_PERMISSION_CLASSES": None},
        {"PROCESS_PERMISSION_CLASSES": "rest_framework.permissions.AllowAny"},
        {"PROCESS_PERMISSION_CLASSES": ["builtins.object"]},
        {"PROCESS_COMMAND_LINE": "yes"},
        {"METRICS_USER_MEMORY": 1},
    ],
)
def test_bad_process_settings_fail_closed(
    fake_nvml: ModuleType, client: Client, setting: dict[str, object]
) -> None:
    with override_settings(GPU_MONITOR=setting):
        response = client.get("/api/gpu/processes")

    assert response.status_code == 503
    assert response.json()["detail"].startswith("GPU_MONITOR is misconfigured: ")
