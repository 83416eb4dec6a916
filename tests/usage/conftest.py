"""Usage fixtures: a scripted host (fake NVML for the GPUs, scripted processes and
users) recorded through the real recorder, tick by tick."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from gpu_monitor import host as host_details
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager
from gpu_monitor.types import GPUProcess, GPUProcessesResponse
from gpu_monitor.usage import writer
from tests.history.conftest import (  # noqa: F401 (postgres tests; recorder threads)
    close_recorder_thread_connections,
    pytest_collection_modifyitems,
)

NOW = 1_795_855_800  # a multiple of 300: tick n of 10 s is in period n // 30


class Script:
    """What the recorder sees at the next tick: each GPU's utilisation (None: NVML
    cannot read it) and the users with processes on it, with their GPU memory (MiB).

    ``users[gpu] = [("alice", 1024), ("bob", 512)]``: one process per entry, its pid
    1000 + 10 x GPU + its place; ``username`` None stands for a process psutil could not
    name (``no_user_because`` says why: psutil not installed by default).
    """

    def __init__(self, fake_nvml: ModuleType) -> None:
        self.fake_nvml = fake_nvml
        self.users: dict[int, list[tuple[str | None, int | None]]] = {}
        self.owners: dict[int, str] = {}  # pid -> owner in /proc, for username None
        self.no_user_because = host_details.NO_PSUTIL  # why a username is None
        self.recorder: Recorder | None = None
        self.epoch = NOW
        self.host = "node-1"  # the recorder's --host (a new host: set it, then restart)

    def utilization(self, gpu: int, percent: int | None) -> None:
        state = self.fake_nvml.STATE.gpus[gpu]
        if percent is None:
            state.errors["utilization"] = self.fake_nvml.NVML_ERROR_NOT_SUPPORTED
        else:
            state.errors.pop("utilization", None)
            state.utilization_gpu = percent

    def processes(self, manager: GPUManager, index: Any = None, **options: Any) -> Any:
        devices = {d.index: d.uuid for d in manager.get_devices()}
        found = [
            GPUProcess(
                gpu_index=gpu,
                gpu_uuid=devices[gpu],
                pid=1000 + 10 * gpu + n,
                type="compute",
                used_memory_mb=memory,
                username=user,
                field_errors={} if user else {"username": self.no_user_because},
            )
            for gpu, users in sorted(self.users.items())
            for n, (user, memory) in enumerate(users)
        ]
        return GPUProcessesResponse(found, len(found), {})

    def restart(self, interval: int = 10) -> Recorder:
        """A new recorder (what a restart of gpu_record is): it keeps nothing in memory."""
        self.recorder = Recorder(
            GPUManager(), host=self.host, interval=interval, retention_s=7 * 86400, buffer_ticks=10
        )
        return self.recorder

    def tick(self, count: int = 1, interval: int | None = None) -> None:
        """``count`` ticks, ``interval`` seconds apart (the recorder's, by default)."""
        if self.recorder is None or (interval and interval != self.recorder.interval):
            self.restart(interval or 10)
        assert self.recorder is not None
        for _ in range(count):
            self.epoch += self.recorder.interval
            self.recorder.tick(self.epoch)

    def skip(self, ticks: int) -> None:
        """The recorder was down for ``ticks`` intervals."""
        assert self.recorder is not None
        self.epoch += ticks * self.recorder.interval


@pytest.fixture
def script(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Script:
    scripted = Script(fake_nvml)
    monkeypatch.setattr(host_details, "processes", scripted.processes)
    monkeypatch.setattr(writer, "uid_owner", lambda pid: scripted.owners.get(pid))
    return scripted


Tick = Callable[..., None]
