"""Fleet fixtures: hosts recorded through the real recorder (fake NVML), a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from gpu_monitor.fleet import hosts, writer
from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager
from gpu_monitor.params import moment
from tests.history.conftest import (  # noqa: F401 (postgres tests; recorder threads)
    close_recorder_thread_connections,
    pytest_collection_modifyitems,
)

NOW = 1_795_856_000  # the fake clock's time: a multiple of 10


PROBLEM = [{"gpu_index": 0, "kind": "uncorrected_ecc", "message": "1 uncorrected ECC error(s)"}]


def seed_host_states(hosts: dict[str, tuple[int, bool]]) -> None:
    """One HostState row per host, without the recorder: (age of its last tick in
    seconds before NOW, has a problem); 10 s ticks."""
    HostState.objects.bulk_create(
        HostState(
            host=host,
            epoch=NOW - age,
            timestamp=moment(NOW - age),
            interval_seconds=10,
            devices=[],
            problems=PROBLEM if problem else [],
            problem_count=int(problem),
        )
        for host, (age, problem) in hosts.items()
    )


class Clock:
    """The fleet's clock, set by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(hosts, "now", fake)
    return fake


class DatabaseClock:
    """The database's clock as the tick writer reads it (``writer.database_now``): None
    (by default: every tick is trusted, whatever this machine's clock says), a time set
    by the test, or the database's real clock when ``real`` is True."""

    def __init__(self) -> None:
        self.now: float | None = None
        self.real = False
        self.original = writer.database_now

    def __call__(self, using: str) -> float | None:
        return self.original(using) if self.real else self.now


@pytest.fixture(autouse=True)
def database_clock(monkeypatch: pytest.MonkeyPatch) -> DatabaseClock:
    fake = DatabaseClock()
    monkeypatch.setattr(writer, "database_now", fake)
    monkeypatch.setattr(writer, "_ahead", set())
    return fake


@pytest.fixture
def record(fake_nvml: ModuleType) -> Callable[..., Recorder]:
    """``record(host, epoch, interval=10, processes=False)``: one tick of ``host``."""

    def tick(host: str, epoch: int = NOW, interval: int = 10, processes: bool = False) -> Recorder:
        recorder = Recorder(
            GPUManager(),
            host=host,
            interval=interval,
            retention_s=7 * 86400,
            buffer_ticks=10,
            processes=processes,
        )
        recorder.tick(epoch)
        return recorder

    return tick
