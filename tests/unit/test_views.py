"""Every endpoint and its status codes, against the fake pynvml."""

from __future__ import annotations

from types import ModuleType

import pytest
from django.test import Client

H100 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "total_memory_mb": 81559,
    "free_memory_mb": 81079,
    "used_memory_mb": 0,
    "utilization_percent": 0,
    "temperature_c": 34,
    "is_available": True,
    "error_message": None,
    "field_errors": {
        "fan_speed_percent": "Not Supported",
        "retired_pages_pending": "Not Supported",
    },
    "uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "pci_bus_id": "00000000:00:06.0",
    "power_draw_w": 71.07,
    "power_limit_w": 700.0,
    "fan_speed_percent": None,
    "memory_utilization_percent": 0,
    "performance_state": "P0",
    "sm_clock_mhz": 345,
    "memory_clock_mhz": 2619,
    "ecc_mode": "enabled",
    "ecc_errors_corrected_volatile": 0,
    "ecc_errors_uncorrected_volatile": 0,
    "ecc_errors_corrected_aggregate": 0,
    "ecc_errors_uncorrected_aggregate": 0,
    "remapped_rows_correctable": 0,
    "remapped_rows_uncorrectable": 0,
    "remapped_rows_pending": False,
    "remapped_rows_failure": False,
    "retired_pages_pending": None,
    "clocks_event_reasons": ["gpu_idle"],
    "persistence_mode": "enabled",
    "compute_mode": "default",
    "encoder_utilization_percent": 0,
    "decoder_utilization_percent": 0,
    "mig_mode": "disabled",
    "mig_devices": [],
    "sm_clock_max_mhz": 1980,
    "memory_clock_max_mhz": 2619,
    "energy_consumed_j": 42983136.0,
}
GPU1 = {
    **H100,
    "index": 1,
    "uuid": "GPU-3a34af56-e2e8-164a-8e46-000000000001",
    "pci_bus_id": "00000000:01:06.0",
}


@pytest.mark.parametrize("path", ["/api/gpu/devices", "/api/gpu/devices/"])
def test_devices_lists_every_gpu(fake_nvml: ModuleType, client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"devices": [H100, GPU1], "count": 2}


def test_devices_without_nvml_is_empty_200(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND

    response = client.get("/api/gpu/devices")

    assert response.status_code == 200
    assert response.json() == {"devices": [], "count": 0}


def test_devices_with_lost_gpu_reports_it(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    body = client.get("/api/gpu/devices").json()

    assert body["count"] == 2
    assert body["devices"][0] == H100
    assert body["devices"][1]["is_available"] is False
    assert body["devices"][1]["error_message"] == "GPU is lost"
    assert body["devices"][1]["total_memory_mb"] is None


def test_devices_with_unsupported_field(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[0].errors["utilization"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    device = client.get("/api/gpu/devices").json()["devices"][0]

    assert device["utilization_percent"] is None
    assert device["memory_utilization_percent"] is None
    assert device["field_errors"] == {
        "utilization_percent": "Not Supported",
        "memory_utilization_percent": "Not Supported",
        "fan_speed_percent": "Not Supported",
        "retired_pages_pending": "Not Supported",
    }
    assert device["is_available"] is True


@pytest.mark.parametrize("path", ["/api/gpu/devices/1", "/api/gpu/devices/1/"])
def test_device_detail(fake_nvml: ModuleType, client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.json() == GPU1


@pytest.mark.parametrize("suffix", ["", "/"])
def test_device_detail_by_uuid(fake_nvml: ModuleType, client: Client, suffix: str) -> None:
    response = client.get(f"/api/gpu/devices/GPU-3a34af56-e2e8-164a-8e46-000000000001{suffix}")

    assert response.status_code == 200
    assert response.json() == GPU1


@pytest.mark.parametrize(
    "uuid", ["GPU-00000000-0000-0000-0000-000000000000", "GPU-", "MIG-x", "GPU-%00", "gpu-1"]
)
def test_device_detail_unknown_uuid_is_404(
    fake_nvml: ModuleType, client: Client, uuid: str
) -> None:
    response = client.get(f"/api/gpu/devices/{uuid}")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(
    "index",
    [
        "2",
        "-1",
        "99999999999999999999999999999",
        "abc",
        "1.0",
        "%00",
        "%E2%82%AC",
        "%2F%2F",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: str.isdigit() but not an index
        "0x1",
    ],
)
def test_device_detail_bad_index_is_json_404(
    fake_nvml: ModuleType, client: Client, index: str
) -> None:
    response = client.get(f"/api/gpu/devices/{index}", HTTP_ACCEPT="application/json")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_device_detail_without_nvml_is_404(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    response = client.get("/api/gpu/devices/0")

    assert response.status_code == 404
    assert response.json() == {"detail": "No GPU with index 0 (Driver Not Loaded)."}


@pytest.mark.parametrize("path", ["/api/gpu/driver", "/api/gpu/driver/"])
def test_driver(fake_nvml: ModuleType, client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.json() == {
        "driver_version": "580.159.04",
        "cuda_driver_version": "13.0",
        "nvml_version": "13.580.159.04",
    }


def test_driver_without_nvml_is_503(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND

    response = client.get("/api/gpu/driver")

    assert response.status_code == 503
    assert response.json() == {"detail": "NVML is not available: NVML Shared Library Not Found"}


@pytest.mark.parametrize("path", ["/api/gpu/status", "/api/gpu/status/"])
def test_status(fake_nvml: ModuleType, client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.json() == {"cuda_available": True, "device_count": 2, "error_message": None}


def test_status_without_nvml(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_NO_PERMISSION

    response = client.get("/api/gpu/status")

    assert response.status_code == 200
    assert response.json() == {
        "cuda_available": False,
        "device_count": 0,
        "error_message": "Insufficient Permissions",
    }


@pytest.mark.parametrize(
    "path", ["/api/gpu/devices", "/api/gpu/devices/0", "/api/gpu/driver", "/api/gpu/status"]
)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_405(
    fake_nvml: ModuleType, client: Client, path: str, method: str
) -> None:
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert "GET" in response["Allow"]
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("path", ["/api/gpu/", "/api/gpu/nope", "/api/gpu/devices/0/extra"])
def test_unknown_path_under_app_is_json_404(
    fake_nvml: ModuleType, client: Client, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert "devices/<gpu>, devices/<gpu>/processes" in response.json()["detail"]


def test_browsable_api_renders_html(fake_nvml: ModuleType, client: Client) -> None:
    response = client.get("/api/gpu/devices", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"NVIDIA H100 80GB HBM3" in response.content


def test_head_is_allowed(fake_nvml: ModuleType, client: Client) -> None:
    assert client.head("/api/gpu/devices").status_code == 200
