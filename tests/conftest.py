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
