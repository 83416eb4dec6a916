"""``GPUManager``: reads GPUs, their processes and the driver through the modules of this
package; the two exceptions above it say why a GPU or NVML is not there."""

from __future__ import annotations

import logging
from typing import Any

from gpu_monitor.manager import events
from gpu_monitor.manager.device import read_core
from gpu_monitor.manager.events import XidEvents, XidEventsUnavailableError
from gpu_monitor.manager.fields import FieldReader, text
from gpu_monitor.manager.health import read_health
from gpu_monitor.manager.mig import parent_handle, read_mig_devices, read_mig_mode
from gpu_monitor.manager.processes import read_processes
from gpu_monitor.manager.session import NVMLSession
from gpu_monitor.types import DriverInfo, GPUDevice, GPUProcess, GPUStatus

logger = logging.getLogger(__name__)


class NVMLUnavailableError(Exception):
    """NVML cannot be used in this process; ``str()`` is the reason."""


class GPUNotFoundError(LookupError):
    """No GPU answers to the requested index or UUID."""


def format_cuda_version(value: int) -> str:
    """Format NVML's CUDA driver version int as nvidia-smi does (13000 -> "13.0")."""
    return f"{value // 1000}.{(value % 1000) // 10}"


class GPUManager:
    """Reads GPUs, their processes and driver information live from NVML.

    NVML is initialised once per process (again in a forked child) and never per call;
    nothing is cached between calls. When NVML cannot be used, the manager is
    "unavailable": it reports no GPUs and keeps the reason in ``error_message``.
    """

    def __init__(self) -> None:
        self._session = NVMLSession()
        # The UUID of each index when last read: a lost GPU can no longer tell NVML its
        # UUID, but answers to it by index; this keeps devices/<uuid> and devices/<index>
        # answering alike for it.
        # Its MIG slices' UUIDs are kept with it, after the GPU's own.
        self._last_uuids: dict[int, tuple[str, ...]] = {}

    @property
    def _nvml(self) -> Any:
        return self._session.nvml

    @property
    def _nvml_initialized(self) -> bool:
        return self._session.initialized

    def _shutdown_nvml(self) -> None:
        """Shut NVML down if this process initialised it; never raises."""
        self._session.shutdown()

    @property
    def error_message(self) -> str | None:
        """Why NVML is unavailable, or None when it is available."""
        self._session.ensure()
        return self._session.error_message

    # -- queries ----------------------------------------------------------------------

    def get_status(self) -> GPUStatus:
        """Whether NVML works and how many GPUs it sees (one NVML call)."""
        session = self._session
        if not session.ensure():
            return GPUStatus(
                cuda_available=False, device_count=0, error_message=session.error_message
            )
        try:
            count = int(self._nvml.nvmlDeviceGetCount())
        except Exception as exc:
            session.report(logger, "count", logging.ERROR, "Error reading the GPU count: %s", exc)
            return GPUStatus(False, 0, f"the GPU count could not be read: {exc}")
        session.recovered("count")
        return GPUStatus(cuda_available=count > 0, device_count=count, error_message=None)

    def is_cuda_available(self) -> bool:
        """True when NVML is usable and sees at least one GPU."""
        return self.get_status().cuda_available

    def get_devices(self) -> list[GPUDevice]:
        """Every GPU, in index order; ``[]`` when NVML is unavailable."""
        return self.get_status_and_devices()[1]

    def get_status_and_devices(self) -> tuple[GPUStatus, list[GPUDevice]]:
        """The status and every GPU, from a single count lookup."""
        status = self.get_status()
        if not self._session.initialized:
            logger.debug("NVML not initialized, returning empty device list")
        return status, [self._query_device(index) for index in range(status.device_count)]

    def get_device(self, index: int) -> GPUDevice:
        """The GPU at ``index``; raises GPUNotFoundError when there is none."""
        self._check_index(index)
        return self._query_device(index)

    def get_device_by_uuid(self, uuid: str) -> GPUDevice:
        """The GPU whose UUID is ``uuid``, or which holds the MIG device ``uuid``;
        raises GPUNotFoundError when there is none."""
        index, handle = self._resolve_uuid(uuid)
        return self._query_device(index, handle)

    def get_processes(self, index: int | None = None) -> tuple[list[GPUProcess], dict[str, str]]:
        """Processes on every GPU (or on GPU ``index``), NVML's fields only, and the reason
        for each GPU whose processes could not be listed (by index, as a string).

        Sorted by GPU index, then GPU memory, largest first. Raises GPUNotFoundError for
        an ``index`` that does not exist.
        """
        if index is not None:
            self._check_index(index)
            indexes = [index]
        else:
            indexes = list(range(self.get_status().device_count))
        processes: list[GPUProcess] = []
        errors: dict[str, str] = {}
        for gpu in indexes:
            try:
                processes += self._query_processes(gpu)
                self._session.recovered(f"gpu{gpu}.processes")
            except Exception as exc:
                reason = str(exc) if isinstance(exc, self._nvml.NVMLError) else repr(exc)
                errors[str(gpu)] = reason
                self._session.report(
                    logger,
                    f"gpu{gpu}.processes",
                    logging.ERROR,
                    "Error listing the processes of GPU %d: %s",
                    gpu,
                    reason,
                )
        processes.sort(key=lambda p: (p.gpu_index, -(p.used_memory_mb or -1), p.pid))
        return processes, errors

    def listen_for_xid_events(self) -> XidEvents:
        """Register for XID critical errors on every GPU (close the result when done);
        raises XidEventsUnavailableError where NVML cannot deliver them."""
        status = self.get_status()
        if not self._session.initialized:
            raise XidEventsUnavailableError(status.error_message or "NVML is not available")
        return events.listen(self._session, status.device_count)

    def index_of_uuid(self, uuid: str) -> int:
        """The index of the GPU with UUID ``uuid`` (or holding that MIG device)."""
        return self._resolve_uuid(uuid)[0]

    def get_driver_info(self) -> DriverInfo:
        """Driver, CUDA and NVML versions; raises NVMLUnavailableError without NVML."""
        session = self._session
        if not session.ensure():
            raise NVMLUnavailableError(session.error_message)
        nvml = self._nvml
        try:
            info = DriverInfo(
                driver_version=text(nvml.nvmlSystemGetDriverVersion()),
                cuda_driver_version=format_cuda_version(nvml.nvmlSystemGetCudaDriverVersion()),
                nvml_version=text(nvml.nvmlSystemGetNVMLVersion()),
            )
        except Exception as exc:
            session.report(
                logger, "driver", logging.ERROR, "Error reading driver information: %s", exc
            )
            raise NVMLUnavailableError(f"driver information could not be read: {exc}") from exc
        session.recovered("driver")
        return info

    # -- lookups ----------------------------------------------------------------------

    def _check_index(self, index: int) -> None:
        status = self.get_status()
        if not 0 <= index < status.device_count:
            reason = status.error_message or f"{status.device_count} GPU(s) present"
            raise GPUNotFoundError(f"No GPU with index {index} ({reason}).")

    def _resolve_uuid(self, uuid: str) -> tuple[int, Any]:
        session = self._session
        if not session.ensure():
            raise GPUNotFoundError(f"No GPU with UUID {uuid} ({session.error_message}).")
        nvml = self._nvml
        try:
            handle = parent_handle(nvml, nvml.nvmlDeviceGetHandleByUUID(uuid.encode()), uuid)
            return int(nvml.nvmlDeviceGetIndex(handle)), handle
        except nvml.NVMLError as exc:
            if session.is_error(exc, "GPU_IS_LOST"):
                index = self._index_last_seen_as(uuid)
                if index is not None:
                    return index, None
                raise GPUNotFoundError(
                    f"GPU {uuid} is lost, and this process never read its index: "
                    "see devices for the GPUs that are unavailable."
                ) from exc
            raise GPUNotFoundError(f"No GPU with UUID {uuid} ({exc}).") from exc
        except Exception as exc:  # e.g. bindings rejecting the argument
            logger.debug("UUID lookup of %r failed", uuid, exc_info=True)
            raise GPUNotFoundError(f"No GPU with UUID {uuid} ({type(exc).__name__}).") from exc

    def _index_last_seen_as(self, uuid: str) -> int | None:
        """The index of the GPU last read with UUID ``uuid`` (a lost GPU), if any; for a
        MIG UUID, its parent's when the parent was read with that slice."""
        for index, known in self._last_uuids.items():
            if uuid in known:
                return index
        return None

    # -- one device -------------------------------------------------------------------

    def _query_device(self, index: int, handle: Any = None) -> GPUDevice:
        key = f"gpu{index}"
        session = self._session
        try:
            if handle is None:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            device = self._read_device(index, handle)
        except self._nvml.NVMLError as exc:
            session.report(
                logger, key, logging.ERROR, "Error querying GPU device %d: %s", index, exc
            )
            return self._unavailable(index, str(exc))
        except Exception as exc:
            message = f"Unexpected error: {type(exc).__name__}: {exc}"
            session.report(
                logger,
                key,
                logging.ERROR,
                "Error querying GPU device %d: %s",
                index,
                message,
                exc_info=True,
            )
            return self._unavailable(index, message)
        session.recovered(key)
        if device.uuid:
            mig = tuple(m.uuid for m in device.mig_devices if m.uuid)
            self._last_uuids[index] = (device.uuid, *mig)
        return device

    def _unavailable(self, index: int, message: str) -> GPUDevice:
        known = self._last_uuids.get(index)
        return GPUDevice.unavailable(index, message, uuid=known[0] if known else None)

    def _read_device(self, index: int, handle: Any) -> GPUDevice:
        reader = FieldReader(self._session, logger, index, f"gpu{index}")
        fields = read_core(reader, handle)
        fields.update(read_health(reader, handle))
        mig_mode = read_mig_mode(reader, handle)
        mig_devices = read_mig_devices(reader, handle) if mig_mode == "enabled" else []
        return GPUDevice(
            index=index,
            **fields,
            mig_mode=mig_mode,
            mig_devices=mig_devices,
            field_errors=reader.errors,
        )

    def _query_processes(self, index: int) -> list[GPUProcess]:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        reader = FieldReader(self._session, logger, index, f"gpu{index}")
        uuid = reader.read(("uuid",), lambda: text(nvml.nvmlDeviceGetUUID(handle)))
        mig_devices = None
        if read_mig_mode(reader, handle) == "enabled":
            mig_devices = read_mig_devices(reader, handle)
        return read_processes(self._session, handle, index, uuid, mig_devices)
