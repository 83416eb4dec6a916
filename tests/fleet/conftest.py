"""Fleet fixtures: hosts recorded through the real recorder (fake NVML), a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from gpu_monitor.fleet import hosts
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import GPUManager
from tests.history.conftest import pytest_collection_modifyitems  # noqa: F401 (postgres tests)

NOW = 1_795_856_000  # the fake clock's time: a multiple of 10


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
