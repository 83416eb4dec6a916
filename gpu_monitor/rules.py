"""What counts as a sign of failing GPU hardware (the one definition that the health
check, ``gpu_monitor.contrib.health_check``, and the dashboard's badges both use), that a
GPU that does not answer is a problem (the health check's and the fleet's), and what the
dashboard marks as high."""

from __future__ import annotations

from dataclasses import dataclass

from gpu_monitor.types import GPUDevice

# Clock event reasons (nvidia-smi's names) that mean the hardware holds the clocks down;
# the others (gpu_idle, sw_power_cap, sw_thermal_slowdown, ...) are normal operation.
HARDWARE_SLOWDOWNS = ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")

# Each kind of problem; the health check's argument that turns it off is the one named
# in CHECK_OF (a failed remap is turned off with a pending one, as nvidia-smi groups them).
UNCORRECTED_ECC = "uncorrected_ecc"
REMAP_PENDING = "remap_pending"
REMAP_FAILED = "remap_failed"
RETIRED_PAGES_PENDING = "retired_pages_pending"
HARDWARE_SLOWDOWN = "hardware_slowdown"
# Not a sign of failing hardware but a GPU that does not answer (lost, fallen off the
# bus): the health check fails on it, the fleet lists it first among a host's problems.
GPU_UNAVAILABLE = "gpu_unavailable"
PROBLEM_KINDS = (
    UNCORRECTED_ECC,
    REMAP_PENDING,
    REMAP_FAILED,
    RETIRED_PAGES_PENDING,
    HARDWARE_SLOWDOWN,
)
CHECK_OF = {
    UNCORRECTED_ECC: "uncorrected_ecc",
    REMAP_PENDING: "remap_pending",
    REMAP_FAILED: "remap_pending",
    RETIRED_PAGES_PENDING: "retired_pages_pending",
    HARDWARE_SLOWDOWN: "hardware_slowdown",
}


# At or above these the dashboard's bars turn orange.
HIGH_PERCENT = 90  # memory used or utilisation
HOT_TEMPERATURE_C = 80


def is_high(percent: float | None) -> bool:
    """Whether memory used or utilisation (percent; None: unknown) is high."""
    return percent is not None and percent >= HIGH_PERCENT


def is_hot(temperature_c: int | None) -> bool:
    """Whether a GPU temperature (None: unknown) is high."""
    return temperature_c is not None and temperature_c >= HOT_TEMPERATURE_C


@dataclass(frozen=True)
class Problem:
    """One problem of one GPU: ``kind`` (one of PROBLEM_KINDS, or GPU_UNAVAILABLE), a short
    ``badge`` for a card and a ``message`` that completes "GPU 0: ..."."""

    kind: str
    badge: str
    message: str


def hardware_problems(device: GPUDevice) -> list[Problem]:
    """Every sign of failing hardware ``device`` shows, in the order of PROBLEM_KINDS.

    A value NVML could not read (None) is no sign: the GPU does not report it.
    """
    found = []
    ecc = device.ecc_errors_uncorrected_volatile
    if ecc:
        found.append(Problem(UNCORRECTED_ECC, f"ECC {ecc}", f"{ecc} uncorrected ECC error(s)"))
    if device.remapped_rows_pending:
        found.append(
            Problem(
                REMAP_PENDING,
                "Remap pending",
                "a row remap is pending (reset the GPU to apply it)",
            )
        )
    if device.remapped_rows_failure:
        found.append(Problem(REMAP_FAILED, "Remap failed", "a row remap has failed"))
    if device.retired_pages_pending:
        found.append(Problem(RETIRED_PAGES_PENDING, "Pages pending", "retired pages are pending"))
    active = [r for r in device.clocks_event_reasons or [] if r in HARDWARE_SLOWDOWNS]
    if active:
        found.append(
            Problem(
                HARDWARE_SLOWDOWN,
                "HW slowdown",
                f"hardware slowdown ({', '.join(active)})",
            )
        )
    return found


def unavailable(device: GPUDevice) -> Problem | None:
    """The problem of a GPU that does not answer (``is_available`` false), with NVML's
    reason; None for one that answers."""
    if device.is_available:
        return None
    reason = device.error_message or "the GPU does not answer"
    return Problem(GPU_UNAVAILABLE, "Unavailable", reason)


def gpu_problems(device: GPUDevice) -> list[Problem]:
    """Every problem of ``device``: not answering (``unavailable``), then its signs of
    failing hardware (``hardware_problems``)."""
    problem = unavailable(device)
    return [problem, *hardware_problems(device)] if problem else hardware_problems(device)
