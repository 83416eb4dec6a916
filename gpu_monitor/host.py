"""Host details of the processes NVML lists, through psutil (``gpu-monitor[processes]``).

NVML gives host pids. Seen from a container without the host's PID namespace a pid may
not exist or may be someone else's process, so a pid is attributed only when it can be
trusted (see ``describe``); otherwise its host fields are null with the reason, and the
row stays.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from gpu_monitor.manager import GPUManager
from gpu_monitor.manager.fields import mib
from gpu_monitor.params import iso
from gpu_monitor.types import GPUProcess, GPUProcessesResponse

psutil: Any
try:
    import psutil
except ImportError:  # the optional extra is not installed
    psutil = None

logger = logging.getLogger(__name__)

HOST_FIELDS = ("username", "name", "command_line", "host_memory_mb", "started_at")
NO_PSUTIL = "psutil is not installed: pip install gpu-monitor[processes]"
NOT_VISIBLE = "not visible from this PID namespace; run with --pid=host"
ENDED = "the process ended after NVML listed it"
DENIED = "access denied (another user's process)"
HIDDEN = "hidden: GPU_MONITOR['PROCESS_COMMAND_LINE'] is False"
ZOMBIE = "the process is a zombie (it ended; its parent has not reaped it)"
# A process that started this long after NVML listed its pid is another process that
# got the pid since (psutil's start times are precise to about 10 ms).
START_SLACK_S = 0.5


def in_child_pid_namespace() -> bool:
    """Whether this process runs in a PID namespace below the host's (a container
    without ``--pid=host``): its ``NSpid`` line then lists more than one pid."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


CHILD_NAMESPACE = in_child_pid_namespace()


def processes(
    manager: GPUManager,
    index: int | None = None,
    *,
    command_line: bool,
    only: Collection[int] | None = None,
) -> GPUProcessesResponse:
    """The processes of every GPU (or of GPU ``index``, or of the GPUs ``only`` names)
    with their host details: what the API, the command and the metrics show. Raises
    GPUNotFoundError for an ``index`` that does not exist."""
    seen_at = time.time()  # before NVML lists them: a process that started later is not it
    found, errors = manager.get_processes(index)
    if only is not None:
        found = [p for p in found if p.gpu_index in only]
        errors = {gpu: reason for gpu, reason in errors.items() if int(gpu) in only}
    described = describe(found, seen_at=seen_at, command_line=command_line)
    return GPUProcessesResponse(described, len(described), errors)


def describe(
    processes: list[GPUProcess], *, seen_at: float, command_line: bool
) -> list[GPUProcess]:
    """``processes`` with their host fields filled in; a pid on several GPUs is looked
    up once. ``seen_at``: the time before NVML listed them; ``command_line``: False
    leaves the command line null with the reason."""
    details = host_details(list(dict.fromkeys(p.pid for p in processes)), seen_at, command_line)
    return [with_host(process, *details[process.pid]) for process in processes]


def with_host(process: GPUProcess, fields: dict[str, Any], errors: dict[str, str]) -> GPUProcess:
    """``process`` with its host ``fields`` and their ``errors`` added."""
    field_errors = {**process.field_errors, **errors} if errors else process.field_errors
    return dataclasses.replace(process, **fields, field_errors=field_errors)


class StaticDetails:
    """What never changes in a process's life (user, name, command line, start), kept
    per pid while the pid still names the same process (same start time): a refresh then
    costs two small /proc reads (start time, memory) instead of five or more."""

    MAX_PIDS = 4096

    def __init__(self) -> None:
        self._by_pid: dict[int, tuple[float, dict[str, Any], dict[str, str]]] = {}
        self._lock = threading.Lock()

    def get(self, process: Any, started: float) -> tuple[dict[str, Any], dict[str, str]]:
        with self._lock:
            cached = self._by_pid.get(process.pid)
        if cached is not None and cached[0] == started:
            return cached[1], cached[2]
        fields, errors = _read(process, STATIC_READERS)
        with self._lock:
            if len(self._by_pid) >= self.MAX_PIDS:
                self._by_pid.clear()  # pids churn; rebuilding costs one read each
            self._by_pid[process.pid] = (started, fields, errors)
        return fields, errors

    def clear(self) -> None:
        with self._lock:
            self._by_pid.clear()


STATIC_READERS: dict[str, Callable[[Any], Any]] = {
    "username": lambda p: p.username(),
    "name": lambda p: p.name(),
    "command_line": lambda p: p.cmdline(),
    "started_at": lambda p: iso(p.create_time()),
}
static_details = StaticDetails()


Details = tuple[dict[str, Any], dict[str, str]]  # host fields, and why each null one is


class ExitWatch:
    """Which of the processes it watches have exited, all told by one ``poll()``.

    A pidfd (Linux 5.3 and later) names a process, not a pid number: it becomes readable
    when that process exits, and the kernel cannot give the pid to another process
    before then. So a pidfd opened before a process's details were read, and still not
    readable after NVML listed the pid again, proves the pid still names that process,
    for every cached pid in one system call. A psutil identity check instead reads
    /proc for each pid on every request (docs/benchmarks.md has the costs).
    """

    MAX = 256  # open pidfds at most: a server's other files need descriptors too

    def __init__(self) -> None:
        self._poll = select.poll()
        self._pids: dict[int, int] = {}  # pidfd -> pid

    def open(self, pid: int) -> int | None:
        """A pidfd of the process that has ``pid`` now; None where there can be none
        (no such process, a kernel or platform without pidfds, MAX reached)."""
        if len(self._pids) >= self.MAX:
            return None
        return open_pidfd(pid)

    def add(self, pidfd: int, pid: int) -> None:
        self._poll.register(pidfd, select.POLLIN)
        self._pids[pidfd] = pid

    def close(self, pidfd: int) -> None:
        if self._pids.pop(pidfd, None) is not None:
            self._poll.unregister(pidfd)
        os.close(pidfd)

    def exited(self) -> list[int]:
        """The pids whose watched process has exited (any event on its pidfd)."""
        return [self._pids[pidfd] for pidfd, _ in self._poll.poll(0)]


def open_pidfd(pid: int) -> int | None:
    """``os.pidfd_open(pid)``, or None where it fails or does not exist."""
    try:
        return _pidfd_open(pid)
    except OSError:  # ESRCH: no such process; EMFILE; ENOSYS: a kernel before 5.3
        return None
    except OverflowError:  # a garbage pid from the driver, above any pid_t
        return None


def _no_pidfd(pid: int) -> int:
    raise OSError(errno.ENOSYS, "no pidfd_open here")


_pidfd_open: Callable[[int], int] = getattr(os, "pidfd_open", _no_pidfd)


class Cached:
    """What ``look_up`` found for a pid, when, and how to tell it still names the same
    process: the pidfd watched for its exit, or where there is none the psutil process
    to compare with the one that has the pid now (None when there was none: it holds
    while no process takes the pid)."""

    __slots__ = ("hidden", "pidfd", "process", "read_at", "shown")

    def __init__(
        self,
        read_at: float,
        process: Any,
        pidfd: int | None,
        fields: dict[str, Any],
        errors: dict[str, str],
    ) -> None:
        self.read_at, self.process, self.pidfd = read_at, process, pidfd
        self.shown: Details = (fields, errors)
        self.hidden: Details = (fields, errors)  # with the command line hidden
        if "command_line" not in errors:
            self.hidden = (
                {name: value for name, value in fields.items() if name != "command_line"},
                {**errors, "command_line": HIDDEN},
            )


class RecentDetails:
    """Host details looked up at most ``SECONDS`` ago, reused while the pid still
    names the same process.

    A dashboard, a scrape and an API client asking within the same second (or a busy
    server) would otherwise read /proc for every process on every request
    (docs/benchmarks.md has the cost). The
    NVML list is still read each time, so a process that ends disappears at once; only
    its host memory can be up to ``SECONDS`` old. A hit is only given once the pid is
    known to still name the process it was read from: its pidfd has not signalled an
    exit (``ExitWatch``: one poll for all of them), or, without a pidfd, psutil's
    process identity (pid and start time, as nvitop does) is the same. A pid the kernel
    gave to another process since is looked up again, never shown with the previous
    owner's user and command line.
    """

    SECONDS = 2.0

    def __init__(self) -> None:
        self._by_pid: dict[int, Cached] = {}
        self._exits = ExitWatch()
        self._pruned_at = 0.0
        self._lock = threading.Lock()

    def get(self, pids: list[int], now: float) -> dict[int, Cached]:
        """The cached details of those of ``pids`` that are fresh and still name the
        process they were read from. Call it after NVML listed the pids: the check
        holds for the listing only if it comes after it."""
        found: dict[int, Cached] = {}
        unwatched: list[int] = []
        with self._lock:
            for pid in self._exits.exited():  # one poll() for every watched process
                self._drop(pid)
            # Pidfds of pids no longer listed; also when the clock went back.
            if abs(now - self._pruned_at) > self.SECONDS:
                self._drop_older(now)
                self._pruned_at = now
            for pid in pids:
                cached = self._by_pid.get(pid)
                if cached is not None and now - cached.read_at <= self.SECONDS:
                    found[pid] = cached
                    if cached.pidfd is None:
                        unwatched.append(pid)
        for pid in unwatched:  # another process has the pid now, or none: look it up
            process = found[pid].process
            if pid_taken(pid) if process is None else process_now(pid) != process:
                del found[pid]
        return found

    def watch(self, pid: int) -> int | None:
        """A pidfd to open before reading ``pid``'s details and to give to ``put``
        (None where there can be none). Should the process exit before its details are
        read, the next ``get`` sees the pidfd signalled and drops what was read."""
        with self._lock:
            return self._exits.open(pid)

    def put(
        self,
        pid: int,
        now: float,
        process: Any,
        fields: dict[str, Any],
        errors: dict[str, str],
        pidfd: int | None = None,
    ) -> Cached:
        """Keep what ``look_up`` found for ``pid``: the psutil process it read it from
        (None when there was none), and the pidfd from ``watch``, which it now owns."""
        cached = Cached(now, process, pidfd, fields, errors)
        with self._lock:
            if len(self._by_pid) >= StaticDetails.MAX_PIDS:
                self._drop_older(now)
            self._drop(pid)
            self._by_pid[pid] = cached
            if pidfd is not None:
                self._exits.add(pidfd, pid)
        return cached

    def clear(self) -> None:
        with self._lock:
            for pid in list(self._by_pid):
                self._drop(pid)
            self._pruned_at = 0.0

    def _drop(self, pid: int) -> None:
        cached = self._by_pid.pop(pid, None)
        if cached is not None and cached.pidfd is not None:
            self._exits.close(cached.pidfd)

    def _drop_older(self, now: float) -> None:
        for pid in [p for p, c in self._by_pid.items() if now - c.read_at > self.SECONDS]:
            self._drop(pid)


def process_now(pid: int) -> Any:
    """The psutil process that has ``pid`` now, or None. psutil compares two processes
    by pid and start time, read from one small /proc file (``create_time()`` would
    also read the boot time: twice the cost)."""
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def pid_taken(pid: int) -> bool:
    """Whether a process has ``pid`` now. Signal 0 sends nothing: kill(2) only looks the
    pid up, far cheaper than ``psutil.Process`` failing on a pid that has no process
    (a container without the host's PID namespace has many of those)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: above any pid_t
        return False
    except OSError:  # EPERM: another user's process
        return True
    return True


recent_details = RecentDetails()


def forget() -> None:
    """Drop every cached host detail (tests; a process that wants fresh reads)."""
    recent_details.clear()
    static_details.clear()


def host_details(pids: list[int], seen_at: float, command_line: bool) -> dict[int, Details]:
    """The host fields of each of ``pids`` and, for each one that is null, why."""
    if psutil is None:
        return dict.fromkeys(pids, ({}, dict.fromkeys(HOST_FIELDS, NO_PSUTIL)))
    found = recent_details.get(pids, seen_at)
    for pid in pids:
        if pid not in found:
            pidfd = recent_details.watch(pid)
            try:
                process, fields, errors = look_up(pid, seen_at)
            except BaseException:
                if pidfd is not None:
                    os.close(pidfd)
                raise
            found[pid] = recent_details.put(pid, seen_at, process, fields, errors, pidfd)
    if command_line:
        return {pid: found[pid].shown for pid in pids}
    return {pid: found[pid].hidden for pid in pids}


def look_up(pid: int, seen_at: float) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """Read the host fields of ``pid`` from /proc (through psutil): the psutil process
    they were read from (None when there was none), the fields and their errors."""
    process = None
    try:
        process = psutil.Process(pid)
        started = process.create_time()
        trusted = _trusted(process, started, seen_at)
    except psutil.NoSuchProcess:
        return None, {}, dict.fromkeys(HOST_FIELDS, NOT_VISIBLE if CHILD_NAMESPACE else ENDED)
    except psutil.Error as exc:  # AccessDenied while checking: do not guess
        return process, {}, dict.fromkeys(HOST_FIELDS, _reason(exc))
    if not trusted:
        return process, {}, dict.fromkeys(HOST_FIELDS, NOT_VISIBLE)
    static, static_errors = static_details.get(process, started)
    memory, memory_errors = _read(process, {"host_memory_mb": lambda p: mib(p.memory_info().rss)})
    return process, {**static, **memory}, {**static_errors, **memory_errors}


def _read(
    process: Any, readers: dict[str, Callable[[Any], Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with process.oneshot():
        for name, read in readers.items():
            try:
                fields[name] = read(process)
            except psutil.Error as exc:
                errors[name] = _reason(exc)
    return fields, errors


def _trusted(process: Any, started: float, seen_at: float) -> bool:
    """Whether ``process`` is the one NVML listed: it started before NVML listed it,
    and, seen from a child PID namespace (where NVML's host pid may name an unrelated
    process of this namespace), it has an NVIDIA device mapped."""
    if started > seen_at + START_SLACK_S:
        return False
    if not CHILD_NAMESPACE:
        return True
    try:
        with open(f"/proc/{process.pid}/maps") as maps:
            return any("/dev/nvidia" in line for line in maps)
    except OSError:
        return False


def _reason(exc: Exception) -> str:
    if psutil is not None and isinstance(exc, psutil.AccessDenied):
        return DENIED
    if psutil is not None and isinstance(exc, psutil.ZombieProcess):
        return ZOMBIE
    if psutil is not None and isinstance(exc, psutil.NoSuchProcess):
        return ENDED
    return f"{type(exc).__name__}: {exc}"
