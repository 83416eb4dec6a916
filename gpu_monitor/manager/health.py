"""Health and mode fields: ECC, row remapping, retired pages, clock event reasons,
persistence and compute modes, encoder and decoder utilisation.

The nine ECC and memory-repair counters and the ECC mode come from one
``nvmlDeviceGetFieldValues`` call (how nvidia-smi and DCGM read them) instead of ten
calls; a driver or binding without it falls back to one call per counter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gpu_monitor.manager.fields import FieldReader

logger = logging.getLogger(__name__)

ENABLED = {0: "disabled", 1: "enabled"}  # NVML_FEATURE_DISABLED / _ENABLED
COMPUTE_MODES = {  # nvidia-smi's names (compute_mode), in lower case
    0: "default",
    1: "exclusive_thread",
    2: "prohibited",
    3: "exclusive_process",
}
# nvidia-smi's names (clocks_event_reasons.*), in bit order; other bits: unknown_0x...
CLOCKS_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# field, NVML field id (nvml.h NVML_FI_DEV_*), how to turn the value into the field's
COUNTERS: list[tuple[str, str, Callable[[int], Any]]] = [
    ("ecc_mode", "NVML_FI_DEV_ECC_CURRENT", lambda v: ENABLED.get(v, f"unknown ({v})")),
    ("ecc_errors_corrected_volatile", "NVML_FI_DEV_ECC_SBE_VOL_TOTAL", int),
    ("ecc_errors_uncorrected_volatile", "NVML_FI_DEV_ECC_DBE_VOL_TOTAL", int),
    ("ecc_errors_corrected_aggregate", "NVML_FI_DEV_ECC_SBE_AGG_TOTAL", int),
    ("ecc_errors_uncorrected_aggregate", "NVML_FI_DEV_ECC_DBE_AGG_TOTAL", int),
    ("remapped_rows_correctable", "NVML_FI_DEV_REMAPPED_COR", int),
    ("remapped_rows_uncorrectable", "NVML_FI_DEV_REMAPPED_UNC", int),
    ("remapped_rows_pending", "NVML_FI_DEV_REMAPPED_PENDING", bool),
    ("remapped_rows_failure", "NVML_FI_DEV_REMAPPED_FAILURE", bool),
    ("retired_pages_pending", "NVML_FI_DEV_RETIRED_PENDING", bool),
]
VALUE_MEMBERS = {
    0: "dVal",
    1: "uiVal",
    2: "ulVal",
    3: "ullVal",
    4: "sllVal",
    5: "siVal",
    6: "usVal",
}


def reason_names(mask: int) -> list[str]:
    """The names of the bits set in a clocks-event-reasons mask, none dropped."""
    names = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            names.append(CLOCKS_EVENT_REASONS.get(bit, f"unknown_{bit:#x}"))
        bit <<= 1
    return names


def read_health(reader: FieldReader, handle: Any) -> dict[str, Any]:
    """The ``GPUDevice`` keyword arguments of the health and mode fields."""
    nvml = reader.nvml
    read = reader.read
    fields = read_counters(reader, handle)

    def utilization(call: Callable[[Any], list[int]]) -> int:
        return int(call(handle)[0])  # [utilisation, sampling period in us]

    fields.update(
        clocks_event_reasons=read(
            ("clocks_event_reasons",), lambda: reason_names(clocks_event_mask(nvml, handle))
        ),
        persistence_mode=read(
            ("persistence_mode",), lambda: ENABLED[nvml.nvmlDeviceGetPersistenceMode(handle)]
        ),
        compute_mode=read(
            ("compute_mode",), lambda: COMPUTE_MODES[nvml.nvmlDeviceGetComputeMode(handle)]
        ),
        encoder_utilization_percent=read(
            ("encoder_utilization_percent",),
            lambda: utilization(nvml.nvmlDeviceGetEncoderUtilization),
        ),
        decoder_utilization_percent=read(
            ("decoder_utilization_percent",),
            lambda: utilization(nvml.nvmlDeviceGetDecoderUtilization),
        ),
    )
    return fields


def clocks_event_mask(nvml: Any, handle: Any) -> int:
    """``nvmlDeviceGetCurrentClocksEventReasons``, or its older name in older bindings."""
    call = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if call is None:
        call = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(call(handle))


def read_counters(reader: FieldReader, handle: Any) -> dict[str, Any]:
    """ECC mode and counters, remapped rows and retired pages: one call when possible."""
    nvml = reader.nvml
    session = reader.session
    if session.field_values and hasattr(nvml, "nvmlDeviceGetFieldValues"):
        ids = [getattr(nvml, name) for _, name, _ in COUNTERS]
        try:
            values = nvml.nvmlDeviceGetFieldValues(handle, ids)
        except nvml.NVMLError as exc:
            if session.is_error(exc, "GPU_IS_LOST"):
                raise
            if not session.is_error(exc, "FUNCTION_NOT_FOUND", "NOT_SUPPORTED"):
                reader.fail(tuple(field for field, _, _ in COUNTERS), str(exc), logged=True)
                return dict.fromkeys((field for field, _, _ in COUNTERS), None)
            logger.debug("nvmlDeviceGetFieldValues unavailable (%s): one call per counter", exc)
            session.field_values = False
        else:
            return {
                field: _field_value(reader, field, value, convert)
                for (field, _, convert), value in zip(COUNTERS, values, strict=True)
            }
    return read_counters_one_by_one(reader, handle)


def _field_value(reader: FieldReader, field: str, value: Any, convert: Callable[[int], Any]) -> Any:
    nvml = reader.nvml
    if value.nvmlReturn != nvml.NVML_SUCCESS:
        error = nvml.NVMLError(value.nvmlReturn)
        if reader.session.is_error(error, "GPU_IS_LOST"):
            raise error
        reader.fail(
            (field,), str(error), logged=not reader.session.is_error(error, "NOT_SUPPORTED")
        )
        return None
    return convert(getattr(value.value, VALUE_MEMBERS[value.valueType]))


def read_counters_one_by_one(reader: FieldReader, handle: Any) -> dict[str, Any]:
    """The same fields as ``read_counters``, through the older one-counter functions."""
    nvml = reader.nvml
    read = reader.read

    def ecc(error_type: str, counter: str) -> int:
        return int(
            nvml.nvmlDeviceGetTotalEccErrors(
                handle,
                getattr(nvml, f"NVML_MEMORY_ERROR_TYPE_{error_type}"),
                getattr(nvml, f"NVML_{counter}_ECC"),
            )
        )

    rows = read(
        (
            "remapped_rows_correctable",
            "remapped_rows_uncorrectable",
            "remapped_rows_pending",
            "remapped_rows_failure",
        ),
        lambda: nvml.nvmlDeviceGetRemappedRows(handle),
    )
    return {
        "ecc_mode": read(("ecc_mode",), lambda: ENABLED[nvml.nvmlDeviceGetEccMode(handle)[0]]),
        "ecc_errors_corrected_volatile": read(
            ("ecc_errors_corrected_volatile",), lambda: ecc("CORRECTED", "VOLATILE")
        ),
        "ecc_errors_uncorrected_volatile": read(
            ("ecc_errors_uncorrected_volatile",), lambda: ecc("UNCORRECTED", "VOLATILE")
        ),
        "ecc_errors_corrected_aggregate": read(
            ("ecc_errors_corrected_aggregate",), lambda: ecc("CORRECTED", "AGGREGATE")
        ),
        "ecc_errors_uncorrected_aggregate": read(
            ("ecc_errors_uncorrected_aggregate",), lambda: ecc("UNCORRECTED", "AGGREGATE")
        ),
        "remapped_rows_correctable": int(rows[0]) if rows is not None else None,
        "remapped_rows_uncorrectable": int(rows[1]) if rows is not None else None,
        "remapped_rows_pending": bool(rows[2]) if rows is not None else None,
        "remapped_rows_failure": bool(rows[3]) if rows is not None else None,
        "retired_pages_pending": read(
            ("retired_pages_pending",),
            lambda: bool(nvml.nvmlDeviceGetRetiredPagesPendingStatus(handle)),
        ),
    }
