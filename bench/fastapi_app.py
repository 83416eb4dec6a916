"""A reference implementation of the original FastAPI design of these endpoints.

What a user could pick instead of Django: pydantic models and FastAPI routes over the
same GPUManager (so the same NVML calls), served by uvicorn with httptools:

    uvicorn bench.fastapi_app:app --http httptools --workers 2
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from gpu_monitor.manager import GPUNotFoundError, NVMLUnavailableError, get_manager


class MIGDevice(BaseModel):
    uuid: str | None
    name: str | None
    gpu_instance_id: int | None
    compute_instance_id: int | None
    total_memory_mb: int | None = None
    used_memory_mb: int | None = None
    free_memory_mb: int | None = None
    utilization_percent: int | None = None
    field_errors: dict[str, str] = {}


class GPUDevice(BaseModel):
    index: int
    name: str
    total_memory_mb: int | None = None
    free_memory_mb: int | None = None
    used_memory_mb: int | None = None
    utilization_percent: int | None = None
    temperature_c: int | None = None
    is_available: bool = True
    error_message: str | None = None
    field_errors: dict[str, str] = {}
    uuid: str | None = None
    pci_bus_id: str | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    fan_speed_percent: int | None = None
    memory_utilization_percent: int | None = None
    performance_state: str | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    ecc_mode: str | None = None
    ecc_errors_corrected_volatile: int | None = None
    ecc_errors_uncorrected_volatile: int | None = None
    ecc_errors_corrected_aggregate: int | None = None
    ecc_errors_uncorrected_aggregate: int | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    retired_pages_pending: bool | None = None
    clocks_event_reasons: list[str] | None = None
    persistence_mode: str | None = None
    compute_mode: str | None = None
    encoder_utilization_percent: int | None = None
    decoder_utilization_percent: int | None = None
    mig_mode: str | None = None
    mig_devices: list[MIGDevice] = []


class GPUDevicesResponse(BaseModel):
    devices: list[GPUDevice]
    count: int


class DriverInfo(BaseModel):
    driver_version: str
    cuda_driver_version: str
    nvml_version: str


app = FastAPI(title="GPU monitor (FastAPI reference)")


def _devices() -> GPUDevicesResponse:
    found = get_manager().get_devices()
    return GPUDevicesResponse(
        devices=[GPUDevice.model_validate(d, from_attributes=True) for d in found],
        count=len(found),
    )


@app.get("/api/gpu/devices", response_model=GPUDevicesResponse)
def devices() -> GPUDevicesResponse:
    """A plain ``def`` route (FastAPI runs it in its thread pool): NVML calls block."""
    return _devices()


@app.get("/api/gpu/devices-async", response_model=GPUDevicesResponse)
async def devices_async() -> GPUDevicesResponse:
    """The same in an ``async def`` route, on the event loop (NVML calls are short)."""
    return _devices()


@app.get("/api/gpu/devices/{index}", response_model=GPUDevice)
def device(index: int) -> GPUDevice:
    try:
        return GPUDevice.model_validate(get_manager().get_device(index), from_attributes=True)
    except GPUNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc


@app.get("/api/gpu/driver", response_model=DriverInfo)
def driver() -> DriverInfo:
    try:
        return DriverInfo.model_validate(get_manager().get_driver_info(), from_attributes=True)
    except NVMLUnavailableError as exc:
        raise HTTPException(503, f"NVML is not available: {exc}") from exc
