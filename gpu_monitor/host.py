"""Host details of the processes NVML lists, through psutil (``gpu-monitor[processes]``).

NVML gives host pids. Seen from a container without the host's PID namespace a pid may
not exist or may be someone else's process, so a pid is attributed only when it can be
trusted (see ``describe``); otherwise its host fields are null with the reason, and the
row stays.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from gpu_monitor.manager import GPUManager
from gpu_monitor.manager.fields import mib
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
    details: dict[int, tuple[dict[str, Any], dict[str, str]]] = {}
    described = []
    for process in processes:
        if process.pid not in details:
            details[process.pid] = host_details(process.pid, seen_at, command_line)
        fields, errors = details[process.pid]
        described.append(
            dataclasses.replace(process, **fields, field_errors={**process.field_errors, **errors})
        )
    return described


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
    "started_at": lambda p: _iso(p.create_time()),
}
static_details = StaticDetails()


class RecentDetails:
    """Host details looked up at most ``SECONDS`` ago, reused while the pid still
    names the same process.

    A dashboard, a scrape and an API client asking within the same second (or a busy
    server) would otherwise read /proc for every process on every request: 256
    processes took 8.5 ms of /proc reads per request on the development machine. The
    NVML list is still read each time, so a process that ends disappears at once; only
    its host memory can be up to ``SECONDS`` old. Every hit checks that the pid still
    names the process it was read from (pid and start time, as nvitop does): a pid the
    kernel gave to another process since is looked up again, never shown with the
    previous owner's user and command line.
    """

    SECONDS = 2.0

    def __init__(self) -> None:
        self._by_pid: dict[int, tuple[float, Any, dict[str, Any], dict[str, str]]] = {}
        self._lock = threading.Lock()

    def get(self, pid: int, now: float) -> tuple[dict[str, Any], dict[str, str]] | None:
        with self._lock:
            cached = self._by_pid.get(pid)
        if cached is None or now - cached[0] > self.SECONDS:
            return None
        if process_now(pid) != cached[1]:  # another process has the pid now, or none
            return None  # the caller looks it up again and puts the new details
        return cached[2], cached[3]

    def put(
        self, pid: int, now: float, process: Any, fields: dict[str, Any], errors: dict[str, str]
    ) -> None:
        """Keep what ``look_up`` found for ``pid``, and the psutil process it read it
        from (None when there was none)."""
        with self._lock:
            if len(self._by_pid) >= StaticDetails.MAX_PIDS:
                self._by_pid = {p: c for p, c in self._by_pid.items() if now - c[0] <= self.SECONDS}
            self._by_pid[pid] = (now, process, fields, errors)

    def clear(self) -> None:
        with self._lock:
            self._by_pid.clear()


def process_now(pid: int) -> Any:
    """The psutil process that has ``pid`` now, or None. psutil compares two processes
    by pid and start time, read from one small /proc file (``create_time()`` would
    also read the boot time: twice the cost)."""
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


recent_details = RecentDetails()


def forget() -> None:
    """Drop every cached host detail (tests; a process that wants fresh reads)."""
    recent_details.clear()
    static_details.clear()


def host_details(
    pid: int, seen_at: float, command_line: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The host fields of ``pid`` and, for each one that is null, why."""
    if psutil is None:
        return {}, dict.fromkeys(HOST_FIELDS, NO_PSUTIL)
    cached = recent_details.get(pid, seen_at)
    if cached is None:
        process, fields, errors = look_up(pid, seen_at)
        recent_details.put(pid, seen_at, process, fields, errors)
    else:
        fields, errors = cached
    if not command_line and "command_line" not in errors:
        fields = {name: value for name, value in fields.items() if name != "command_line"}
        errors = {**errors, "command_line": HIDDEN}
    return fields, errors


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


def _iso(timestamp: float) -> str:
    """A start time as ISO 8601 in UTC, to the second."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")
