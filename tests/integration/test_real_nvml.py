"""The real NVML, no mocking: graceful without a GPU, real numbers with one.

Each test takes the branch this machine allows; both branches assert.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from django.test import Client

from gpu_monitor import manager as manager_module
from gpu_monitor.manager import GPUManager

pytestmark = pytest.mark.integration


@pytest.fixture
def real_manager(monkeypatch: pytest.MonkeyPatch) -> GPUManager:
    """A fresh manager on the real pynvml, installed as the process's manager."""
    assert "tests.fakes" not in getattr(sys.modules.get("pynvml"), "__name__", "")
    manager = GPUManager()
    monkeypatch.setattr(manager_module, "_manager", manager)
    return manager


def _nvidia_smi(query: str) -> list[str]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [line.strip() for line in out.strip().splitlines()]


def test_devices_endpoint(real_manager: GPUManager, client: Client) -> None:
    response = client.get("/api/gpu/devices")
    body = response.json()

    assert response.status_code == 200
    if real_manager.error_message is None:
        assert body["count"] >= 1
        assert body["devices"][0]["total_memory_mb"] > 0
        assert all(isinstance(d["name"], str) and d["name"] for d in body["devices"])
    else:
        assert body == {"devices": [], "count": 0}


def test_driver_endpoint(real_manager: GPUManager, client: Client) -> None:
    response = client.get("/api/gpu/driver")

    if real_manager.error_message is None:
        assert response.status_code == 200
        expected = _nvidia_smi("driver_version")[0]
        assert response.json()["driver_version"] == expected
    else:
        assert response.status_code == 503
        assert response.json()["detail"].startswith("NVML is not available: ")


def test_status_endpoint(real_manager: GPUManager, client: Client) -> None:
    body = client.get("/api/gpu/status").json()

    if real_manager.error_message is None:
        assert body["cuda_available"] is True
        assert body["device_count"] == len(_nvidia_smi("index"))
        assert body["error_message"] is None
    else:
        assert body["cuda_available"] is False
        assert body["device_count"] == 0
        assert body["error_message"] == real_manager.error_message


def _memory_rows() -> list[tuple[int, int, int, int]]:
    """nvidia-smi's index, memory.total, memory.used and memory.free (MiB) of each GPU."""
    rows = [row.split(",") for row in _nvidia_smi("index,memory.total,memory.used,memory.free")]
    return [(int(index), int(total), int(used), int(free)) for index, total, used, free in rows]


def test_memory_agrees_with_nvidia_smi(real_manager: GPUManager) -> None:
    """Total exactly; used and free as nvidia-smi showed them just before or just after
    (or in between: a process may allocate while both read)."""
    devices = real_manager.get_devices()
    if real_manager.error_message is None:
        assert shutil.which("nvidia-smi"), "NVML works but nvidia-smi is missing"
        before = _memory_rows()
        devices = real_manager.get_devices()
        after = _memory_rows()
        assert len(devices) == len(before) == len(after)
        for device, (index, total, used0, free0), (_, _, used1, free1) in zip(
            devices, before, after, strict=True
        ):
            assert (device.index, device.total_memory_mb) == (index, total)
            assert device.free_memory_mb is not None and device.used_memory_mb is not None
            assert min(free0, free1) <= device.free_memory_mb <= max(free0, free1), (
                f"GPU {index}: free {device.free_memory_mb} MiB, nvidia-smi {free0}/{free1}"
            )
            assert min(used0, used1) <= device.used_memory_mb <= max(used0, used1), (
                f"GPU {index}: used {device.used_memory_mb} MiB, nvidia-smi {used0}/{used1}"
            )
    else:
        assert devices == []
        assert real_manager.is_cuda_available() is False


def test_forked_child_reads_real_gpus(real_manager: GPUManager) -> None:
    expected = len(real_manager.get_devices())
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the manager must initialise NVML again here
        try:
            devices = real_manager.get_devices()
            total = devices[0].total_memory_mb if devices else 0
            os.write(write_fd, f"{len(devices)}|{total}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        count, total = (int(x) for x in pipe.read().split("|"))
    os.waitpid(pid, 0)

    assert count == expected
    if real_manager.error_message is None:
        assert count >= 1
        assert total > 0
    else:
        assert count == 0


HEALTH_FIELDS = (
    "ecc_mode",
    "ecc_errors_corrected_volatile",
    "ecc_errors_uncorrected_volatile",
    "ecc_errors_corrected_aggregate",
    "ecc_errors_uncorrected_aggregate",
    "remapped_rows_correctable",
    "remapped_rows_uncorrectable",
    "remapped_rows_pending",
    "remapped_rows_failure",
    "retired_pages_pending",
    "clocks_event_reasons",
    "persistence_mode",
    "compute_mode",
    "encoder_utilization_percent",
    "decoder_utilization_percent",
    "mig_mode",
)


def test_health_fields_are_values_or_named_nulls(real_manager: GPUManager) -> None:
    devices = real_manager.get_devices()
    if real_manager.error_message is None:
        for device in devices:
            assert device.is_available, device.error_message
            for name in HEALTH_FIELDS:
                value = getattr(device, name)
                assert value is not None or name in device.field_errors, name
            assert device.mig_mode != "enabled" or device.mig_devices
            ecc = _nvidia_smi("ecc.mode.current")[device.index].lower()
            assert device.ecc_mode == (None if "n/a" in ecc else ecc)
    else:
        assert devices == []


def test_processes_endpoint(real_manager: GPUManager, client: Client, db: None) -> None:
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    response = client.get("/api/gpu/processes")
    body = response.json()

    assert response.status_code == 200
    if real_manager.error_message is None:
        assert body["count"] == len(body["processes"])
        assert all(p["gpu_index"] < len(real_manager.get_devices()) for p in body["processes"])
    else:
        assert body == {"processes": [], "count": 0, "gpu_errors": {}}
