"""Registering for XID events never leaks an NVML event set, whatever fails."""

from __future__ import annotations

from types import ModuleType

import pytest

from gpu_monitor.manager import GPUManager, XidEventsUnavailableError


def test_bindings_failing_during_registration_free_the_set(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(handle: object, event_types: int, event_set: object) -> None:
        raise TypeError("bad argument")

    monkeypatch.setattr(fake_nvml, "nvmlDeviceRegisterEvents", broken)
    manager = GPUManager()
    manager.get_status()
    before = len(fake_nvml.EVENT_SETS)

    with pytest.raises(XidEventsUnavailableError, match="TypeError: bad argument"):
        manager.listen_for_xid_events()

    created = fake_nvml.EVENT_SETS[before:]
    assert len(created) == 1
    assert created[0].freed is True


def test_nvml_refusing_every_gpu_frees_the_set(fake_nvml: ModuleType) -> None:
    fake_nvml.STATE.events_error = fake_nvml.NVML_ERROR_NOT_SUPPORTED
    manager = GPUManager()
    manager.get_status()
    before = len(fake_nvml.EVENT_SETS)

    with pytest.raises(XidEventsUnavailableError) as raised:
        manager.listen_for_xid_events()

    assert str(raised.value) == "GPU 0: Not Supported; GPU 1: Not Supported"

    assert [s.freed for s in fake_nvml.EVENT_SETS[before:]] == [True]
