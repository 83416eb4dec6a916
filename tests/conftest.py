"""Shared fixtures: the fake pynvml for unit tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from gpu_monitor import host
from gpu_monitor import manager as manager_module
from tests.fakes import pynvml as fake_pynvml


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The fake pynvml with two healthy H100s, installed as ``pynvml``.

    The process's manager is reset, so the first ``get_manager()`` after the test has
    changed ``fake_nvml.STATE`` (or called ``configure``) initialises against it.
    """
    fake_pynvml.configure(gpus=2)
    host.forget()  # host details cached by an earlier test must not leak into this one
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml)
    monkeypatch.setattr(manager_module, "_manager", None)
    monkeypatch.setattr(manager_module.atexit, "register", lambda func: func)
    yield fake_pynvml
    fake_pynvml.configure()


@pytest.fixture(autouse=True)
def close_recorder_thread_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder's writer thread closes its connection when it ends, but Django keeps
    an in-memory test database open even on close(): close the thread's SQLite
    connection itself, or Python 3.13 reports it unclosed when the thread is gone."""
    from django.db import connections

    from gpu_monitor.history.recorder import Recorder

    original = Recorder.write_until_finished

    def write_until_finished(self: Recorder) -> None:
        try:
            original(self)
        finally:
            for wrapper in connections.all(initialized_only=True):
                if wrapper.vendor == "sqlite" and wrapper.connection is not None:
                    wrapper.connection.close()

    monkeypatch.setattr(Recorder, "write_until_finished", write_until_finished)
