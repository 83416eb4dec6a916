"""XID critical errors, as NVML's event sets deliver them (Linux only).

Events that happen before registration are lost; waiting blocks, so a caller waits in
its own thread with a short timeout to stay responsive to shutdown.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gpu_monitor.manager.fields import text
from gpu_monitor.manager.session import NVMLSession
from gpu_monitor.types import XidEvent

logger = logging.getLogger(__name__)


class XidEventsUnavailableError(Exception):
    """XID events cannot be listened to here; ``str()`` is the reason."""


class XidEvents:
    """A registration for XID critical errors on every GPU that supports it."""

    def __init__(self, session: NVMLSession, count: int) -> None:
        self._session = session
        nvml = session.nvml
        self._set = nvml.nvmlEventSetCreate()
        self.gpus: list[int] = []
        reasons = []
        try:
            for index in range(count):
                try:
                    handle = nvml.nvmlDeviceGetHandleByIndex(index)
                    nvml.nvmlDeviceRegisterEvents(
                        handle, nvml.nvmlEventTypeXidCriticalError, self._set
                    )
                except nvml.NVMLError as exc:
                    reasons.append(f"GPU {index}: {exc}")
                    continue
                self.gpus.append(index)
        except BaseException:  # anything else (bindings, interrupt): never leak the set
            self.close()
            raise
        if not self.gpus:
            self.close()
            raise XidEventsUnavailableError("; ".join(reasons) or "no GPU")
        if reasons:
            logger.warning("XID events not available on %s", "; ".join(reasons))

    def wait(self, timeout_ms: int) -> XidEvent | None:
        """The next XID event, or None after ``timeout_ms`` without one."""
        nvml = self._session.nvml
        try:
            data = nvml.nvmlEventSetWait_v2(self._set, timeout_ms)
        except nvml.NVMLError as exc:
            if self._session.is_error(exc, "TIMEOUT"):
                return None
            raise
        at = time.time()
        index = uuid = None
        try:
            index = int(nvml.nvmlDeviceGetIndex(data.device))
            uuid = text(nvml.nvmlDeviceGetUUID(data.device))
        except nvml.NVMLError:  # a GPU that fell off the bus still has its XID recorded
            logger.debug("XID event from a GPU that no longer answers", exc_info=True)
        return XidEvent(gpu_index=index, gpu_uuid=uuid, xid=int(data.eventData), at=at)

    def close(self) -> None:
        try:
            self._session.nvml.nvmlEventSetFree(self._set)
        except Exception:
            logger.debug("nvmlEventSetFree failed", exc_info=True)


def listen(session: NVMLSession, count: int) -> XidEvents:
    """Register for XID events on every GPU; raises XidEventsUnavailableError."""
    nvml: Any = session.nvml
    if nvml is None or not hasattr(nvml, "nvmlEventSetCreate"):
        raise XidEventsUnavailableError(session.error_message or "NVML has no event sets")
    try:
        return XidEvents(session, count)
    except nvml.NVMLError as exc:  # nvmlEventSetCreate itself: not supported, no permission
        raise XidEventsUnavailableError(str(exc)) from exc
    except XidEventsUnavailableError:
        raise
    except Exception as exc:  # the bindings themselves failed
        logger.debug("Registering for XID events failed", exc_info=True)
        raise XidEventsUnavailableError(f"{type(exc).__name__}: {exc}") from exc
