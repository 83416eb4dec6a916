"""NVML's lifetime in one process, and saying a repeated failure once.

NVML is initialised once per process and again in a child forked after that (a forked
child gets NVMLError_Uninitialized on every query until it initialises itself), and shut
down at exit by the process that initialised it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

# True while the caller prints every failure it gets back (``manage.py gpu_devices``
# shows them in its table): report() then logs them at DEBUG instead of repeating them.
_failures_shown: ContextVar[bool] = ContextVar("gpu_monitor_failures_shown", default=False)


@contextlib.contextmanager
def failures_shown_by_caller() -> Iterator[None]:
    """Within this block, :meth:`NVMLSession.report` logs at DEBUG in this context:
    the caller shows each failure (a row's error, a field's N/A) to its user itself."""
    token = _failures_shown.set(True)
    try:
        yield
    finally:
        _failures_shown.reset(token)


class NVMLSession:
    """The ``pynvml`` module of this process once ``nvmlInit()`` worked, else the reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.nvml: Any = None
        self.initialized = False
        self.init_pid: int | None = None
        self.error_message: str | None = None
        # Cleared once the driver or the bindings show that they lack them:
        self.memory_v2 = True
        self.field_values = True
        self._reported: dict[str, str] = {}
        with self._lock:
            self._init_locked()

    def _init_locked(self) -> None:
        """Initialise NVML in this process; never raises."""
        self.init_pid = os.getpid()
        self.initialized = False
        try:
            import pynvml
        except ImportError as exc:
            self._init_failed(f"the pynvml module (nvidia-ml-py) could not be imported: {exc}")
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self._init_failed(str(exc))
            return
        except Exception as exc:  # a broken library can raise anything; stay unavailable
            self._init_failed(f"{type(exc).__name__}: {exc}")
            return
        self.nvml = pynvml
        self.initialized = True
        self.error_message = None
        try:
            count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # initialisation must never raise
            logger.warning("NVML initialized, but the GPU count could not be read: %s", exc)
        else:
            # INFO, as the specification has it; gpu_monitor's commands say it only at
            # --verbosity 2 and more (gpu_monitor.commands).
            logger.info("NVML initialized successfully. Found %d GPU(s)", count)

    def _init_failed(self, reason: str) -> None:
        self.error_message = reason
        # A caller that shows the reason itself (gpu_devices' error) is not repeated.
        level = logging.DEBUG if _failures_shown.get() else logging.WARNING
        logger.log(level, "NVML initialization failed: %s. GPU features disabled.", reason)

    def ensure(self) -> bool:
        """Initialise again in a process forked after initialisation; True if usable."""
        if self.init_pid != os.getpid():
            with self._lock:
                if self.init_pid != os.getpid():
                    logger.debug(
                        "Process %d forked after NVML init: initialising again", os.getpid()
                    )
                    self._init_locked()
        return self.initialized

    def shutdown(self) -> None:
        """Shut NVML down if this process initialised it; never raises."""
        with self._lock:
            if not self.initialized or self.init_pid != os.getpid():
                return
            self.initialized = False
            self.error_message = "NVML has been shut down in this process"
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                logger.debug("nvmlShutdown failed", exc_info=True)

    def is_error(self, exc: BaseException, *codes: str) -> bool:
        """Whether ``exc`` is an NVMLError whose code is one of the ``NVML_ERROR_*`` names."""
        nvml = self.nvml
        value = getattr(exc, "value", None)
        return isinstance(exc, nvml.NVMLError) and any(
            value == getattr(nvml, f"NVML_ERROR_{code}", object()) for code in codes
        )

    def report(
        self,
        log: logging.Logger,
        key: str,
        level: int,
        msg: str,
        *args: Any,
        exc_info: bool = False,
    ) -> None:
        """Log a failure at ``level`` when it is new for ``key``, at DEBUG while it repeats
        (and within :func:`failures_shown_by_caller`)."""
        text = msg % args
        if self._reported.get(key) == text or _failures_shown.get():
            # A failure the caller shows is not recorded: whoever else meets it first
            # still logs it at its level.
            log.debug(msg, *args, exc_info=exc_info)
            return
        self._reported[key] = text
        log.log(level, msg, *args, exc_info=exc_info)

    def recovered(self, key: str) -> None:
        """``key`` works again: its next failure is a change of state, logged at its level."""
        self._reported.pop(key, None)
