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
from collections.abc import Callable
from typing import Any

from gpu_monitor.manager.fields import mib
from gpu_monitor.types import GPUProcess

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
# A process that started this long after NVML listed its pid is another process that
# got the pid since (psutil's start times are precise to about 10 ms).
START_SLACK_S = 0.5


class LookupCounter:
    """How many psutil lookups were made (the benchmark reports it per request)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


lookups = LookupCounter()


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


def host_details(
    pid: int, seen_at: float, command_line: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """The host fields of ``pid`` and, for each one that is null, why."""
    if psutil is None:
        return {}, dict.fromkeys(HOST_FIELDS, NO_PSUTIL)
    lookups.add()
    try:
        process = psutil.Process(pid)
        trusted = _trusted(process, seen_at)
    except psutil.NoSuchProcess:
        return {}, dict.fromkeys(HOST_FIELDS, NOT_VISIBLE if CHILD_NAMESPACE else ENDED)
    except psutil.Error as exc:  # AccessDenied while checking: do not guess
        return {}, dict.fromkeys(HOST_FIELDS, _reason(exc))
    if not trusted:
        return {}, dict.fromkeys(HOST_FIELDS, NOT_VISIBLE)
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}
    readers: dict[str, Callable[[], Any]] = {
        "username": process.username,
        "name": process.name,
        "command_line": process.cmdline,
        "host_memory_mb": lambda: mib(process.memory_info().rss),
        "started_at": lambda: _iso(process.create_time()),
    }
    if not command_line:
        del readers["command_line"]
        errors["command_line"] = HIDDEN
    with process.oneshot():
        for name, read in readers.items():
            try:
                fields[name] = read()
            except psutil.Error as exc:
                errors[name] = _reason(exc)
    return fields, errors


def _trusted(process: Any, seen_at: float) -> bool:
    """Whether ``process`` is the one NVML listed: it started before NVML listed it,
    and, seen from a child PID namespace (where NVML's host pid may name an unrelated
    process of this namespace), it has an NVIDIA device mapped."""
    if process.create_time() > seen_at + START_SLACK_S:
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
        return "the process is a zombie (it ended; its parent has not reaped it)"
    if psutil is not None and isinstance(exc, psutil.NoSuchProcess):
        return ENDED
    return f"{type(exc).__name__}: {exc}"


def _iso(timestamp: float) -> str:
    """A start time as ISO 8601 in UTC, to the second."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")
