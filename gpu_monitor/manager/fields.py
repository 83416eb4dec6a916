"""Reading one GPU's fields one by one, and NVML's units turned into nvidia-smi's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from gpu_monitor.manager.session import NVMLSession

T = TypeVar("T")
MIB = 1024 * 1024


def mib(size: int) -> int:
    """Bytes to whole MiB, rounded up as nvidia-smi does.

    On a real H200, NVML said free = 150109880320 B (143155.94 MiB) and reserved =
    644939776 B (615.06 MiB); nvidia-smi showed 143156 and 616 MiB. Flooring would
    disagree with nvidia-smi by 1 MiB whenever a value is not a whole number of MiB.
    """
    return -(-size // MIB)


def watts(milliwatts: int) -> float:
    """NVML reports power in milliwatts; nvidia-smi shows watts with two decimals."""
    return round(milliwatts / 1000, 2)


def text(value: bytes | str) -> str:
    """NVML strings are ``bytes`` in older bindings and ``str`` in newer ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class FieldReader:
    """Reads the fields of one GPU (or MIG device), each on its own.

    A field NVML cannot give is None and named in ``errors`` with NVML's reason, so one
    unsupported field never hides the others. "GPU is lost" is not a field's problem:
    it propagates and the caller marks the whole GPU unavailable. Failures other than
    "Not Supported" are logged at ERROR once per change of state.
    """

    def __init__(self, session: NVMLSession, log: logging.Logger, index: int, key: str) -> None:
        self.session = session
        self.nvml = session.nvml
        self.log = log
        self.index = index
        self.key = key
        self.errors: dict[str, str] = {}

    def read(self, fields: tuple[str, ...], call: Callable[[], T]) -> T | None:
        """``call()``, or None with ``errors`` set for every name in ``fields``."""
        try:
            value = call()
        except self.nvml.NVMLError as exc:
            if self.session.is_error(exc, "GPU_IS_LOST"):
                raise
            self.fail(fields, str(exc), logged=not self.session.is_error(exc, "NOT_SUPPORTED"))
            return None
        self.session.recovered(f"{self.key}.{fields[0]}")
        return value

    def fail(self, fields: tuple[str, ...], reason: str, *, logged: bool = False) -> None:
        """Mark ``fields`` null with ``reason``; ``logged``: also log it (once per state)."""
        for name in fields:
            self.errors[name] = reason
        if logged:
            self.session.report(
                self.log,
                f"{self.key}.{fields[0]}",
                logging.ERROR,
                "Error querying GPU device %d: %s (%s)",
                self.index,
                reason,
                ", ".join(fields),
            )
