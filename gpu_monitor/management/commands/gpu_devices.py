"""``manage.py gpu_devices``: every GPU in a terminal, or as the API's JSON."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gpu_monitor import terminal
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.conf import conf
from gpu_monitor.manager import GPUManager, NVMLUnavailableError, get_manager
from gpu_monitor.manager.session import failures_shown_by_caller
from gpu_monitor.rules import HARDWARE_SLOWDOWNS
from gpu_monitor.terminal import Cell
from gpu_monitor.types import (
    GPUDevice,
    GPUDevicesResponse,
    GPUProcess,
    GPUProcessesResponse,
    MIGDevice,
)

COLUMNS = ("GPU", "Name", "Memory", "Util", "Temp", "State")
WIDE_COLUMNS = (
    *COLUMNS[:-1],
    "Mem util",
    "Power",
    "Fan",
    "Perf",
    "SM clock",
    "Mem clock",
    "Vol unc ECC",
    "Remap",
    "Clock events",
    "Bus ID",
    "UUID",
    "State",
)
MIG_HEADERS = ("MIG", "Name", "Memory", "UUID")
PROCESS_HEADERS = ("PID", "User", "Name", "GPU memory", "SM", "Type", "Command")
LEFT_ALIGNED = {"Name", "Bus ID", "UUID", "State", "Remap", "Clock events", "MIG", "User", "Type"}
INDENT = "     "  # MIG devices and processes: under their GPU's row
# Cut to fit the terminal (terminal.fit): names and texts, never a number or a UUID.
CUTTABLE = {"Name", "Clock events", "User", "Command"}


def devices_json(devices: list[GPUDevice]) -> str:
    """The exact bytes of ``GET api/gpu/devices`` for ``devices``, without importing DRF
    (terminal.dataclass_json)."""
    return terminal.dataclass_json(GPUDevicesResponse(devices, len(devices)))


def _non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"a GPU index is a non-negative integer, not {text!r}")
    return int(text)


class Command(GPUMonitorCommand):
    """Show every GPU: memory, utilisation, temperature, state; or the API's JSON."""

    requires_system_checks = ()  # run in loops: skip the checks' cost and noise
    help = "Show the NVIDIA GPUs of this machine (memory, utilisation, temperature) read from NVML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the JSON document of GET api/gpu/devices instead of a table "
            "(default: table). With --watch, one document per line (JSON Lines).",
        )
        added = [column for column in WIDE_COLUMNS if column not in COLUMNS]
        parser.add_argument(
            "--wide",
            action="store_true",
            help=f"Add the columns {', '.join(added[:-1])} and {added[-1]} (memory "
            "utilisation, power draw / limit, fan, performance state, clocks, uncorrected "
            "volatile ECC errors, row remapping, clock event reasons, PCI bus id) to the "
            "table (default: off).",
        )
        parser.add_argument(
            "-p",
            "--processes",
            action="store_true",
            help="List the processes on each GPU under its row: pid, user, name, GPU memory, "
            "SM utilisation (default: off). With --json, print the JSON of GET "
            "api/gpu/processes instead.",
        )
        parser.add_argument(
            "--full-command",
            action="store_true",
            help="With --processes, show each process's command line (default: off, and on "
            "when GPU_MONITOR['PROCESS_COMMAND_LINE'] is True, as in the web API).",
        )
        parser.add_argument(
            "--index",
            type=_non_negative_int,
            action="append",
            metavar="N",
            help="Show only GPU N; repeat for more (default: every GPU).",
        )
        terminal.add_watch_arguments(parser)
        self._usage_error = parser.error  # exit status 2 with the usage, as argparse's own

    def handle(self, *args: Any, **options: Any) -> None:
        watch = terminal.Watch.from_options(options, self._usage_error)
        with failures_shown_by_caller():  # a failed NVML init: said once, as the error
            manager = get_manager()

        def frame() -> None:
            # Each failure is in the output (a row's error, N/A, the JSON's error_message
            # and field_errors): logged at DEBUG, not on stderr again.
            with failures_shown_by_caller():
                self._show(manager, options, watch)

        watch.run(frame, self.stdout)

    def _show(self, manager: GPUManager, options: dict[str, Any], watch: terminal.Watch) -> None:
        as_json = options["json"]
        status, devices = manager.get_status_and_devices()
        selected = self._select(devices, options["index"]) if status.cuda_available else []
        processes = self._processes(manager, selected, options) if options["processes"] else None
        if as_json:
            if processes is None:
                self.stdout.write(devices_json(selected))
            else:
                self.stdout.write(terminal.dataclass_json(processes))
        if not status.cuda_available:
            raise CommandError(
                f"No NVIDIA GPU available: {status.error_message or 'NVML sees no GPU'}",
                returncode=1,
            )
        if not as_json:
            watch.separate(self.stdout)
            gpus = f"{len(selected)} of {len(devices)}" if options["index"] else str(len(devices))
            lines = self._table(manager, selected, gpus, options, processes)
            self.stdout.write("\n".join(lines))

    @staticmethod
    def _processes(
        manager: GPUManager, devices: list[GPUDevice], options: dict[str, Any]
    ) -> GPUProcessesResponse:
        """The processes of the selected GPUs with host details, as the API has them."""
        from gpu_monitor import host  # psutil: start-up time that only -p needs

        return host.processes(
            manager, command_line=_command_lines(options), only={d.index for d in devices}
        )

    @staticmethod
    def _select(devices: list[GPUDevice], indexes: Sequence[int] | None) -> list[GPUDevice]:
        if not indexes:
            return devices
        missing = sorted(set(indexes) - {d.index for d in devices})
        if missing:
            raise CommandError(
                f"No GPU with index {', '.join(map(str, missing))}: "
                f"this machine has {len(devices)} GPU(s), indexes 0 to {len(devices) - 1}."
            )
        return [d for d in devices if d.index in indexes]

    def _table(
        self,
        manager: GPUManager,
        devices: list[GPUDevice],
        gpus: str,
        options: dict[str, Any],
        processes: GPUProcessesResponse | None,
    ) -> list[str]:
        """The header line (versions, ``gpus`` GPU(s)), then a row per GPU, with its MIG
        devices and (``processes``) its processes under it."""
        wide = options["wide"]
        try:
            driver = manager.get_driver_info()
            versions = f"Driver {driver.driver_version}   CUDA {driver.cuda_driver_version}"
        except NVMLUnavailableError:
            versions = "Driver N/A   CUDA N/A"
        headers = WIDE_COLUMNS if wide else COLUMNS
        limit = terminal.columns(self.stdout)
        rows: list[list[Cell]] = [[(h, self.style.MIGRATE_HEADING) for h in headers]]
        rows += [self._row(device, wide) for device in devices]
        widths = _widths(rows, headers, limit)
        lines = [self.style.MIGRATE_HEADING(f"{versions}   {gpus} GPU(s)")]
        lines.append(self._line(rows[0], widths, headers))
        mig_rows = [[self._mig_row(mig) for mig in d.mig_devices] for d in devices]
        process_rows = [self._process_rows(d, processes) for d in devices]
        process_header: list[Cell] = [
            (h, self.style.MIGRATE_HEADING)
            for h in PROCESS_HEADERS[: None if _command_lines(options) else -1]
        ]
        under = None if limit is None else max(1, limit - len(INDENT))
        mig_widths = _widths([row for group in mig_rows for row in group], MIG_HEADERS, under)
        process_widths = _widths(
            [process_header, *(row for g in process_rows for row in g)], PROCESS_HEADERS, under
        )
        for row, migs, procs in zip(rows[1:], mig_rows, process_rows, strict=True):
            lines.append(self._line(row, widths, headers))
            lines += [INDENT + self._line(mig, mig_widths, MIG_HEADERS) for mig in migs]
            if any(len(p) > 1 for p in procs):  # a header over rows, not over a message
                procs = [process_header, *procs]
            lines += [INDENT + self._line(p, process_widths, PROCESS_HEADERS) for p in procs]
        return lines

    @staticmethod
    def _line(row: list[Cell], widths: list[int], headers: Sequence[str]) -> str:
        """A row under ``headers``; its last cell (State, or an error) is not padded."""
        return terminal.line(row, widths, [h in LEFT_ALIGNED for h in headers])

    def _mig_row(self, mig: MIGDevice) -> list[Cell]:
        """A MIG device as nvidia-smi's MIG table has it: GI/CI, name, shared memory."""
        memory = "N/A"
        if mig.used_memory_mb is not None and mig.total_memory_mb:
            percent = round(100 * mig.used_memory_mb / mig.total_memory_mb)
            memory = f"{mig.used_memory_mb} / {mig.total_memory_mb} MiB ({percent}%)"
        return [
            (f"MIG {_na(mig.gpu_instance_id, '{}')}/{_na(mig.compute_instance_id, '{}')}", None),
            (terminal.printable(_na(mig.name, "{}")), None),
            (memory, None),
            (_na(mig.uuid, "{}"), None),
        ]

    def _process_rows(
        self, device: GPUDevice, processes: GPUProcessesResponse | None
    ) -> list[list[Cell]]:
        """One row per process on ``device`` (as gpustat -cpu), or why there is none."""
        if processes is None:
            return []
        error = processes.gpu_errors.get(str(device.index))
        if error:
            return [[(f"processes unavailable: {error}", self.style.ERROR)]]
        rows = []
        for p in processes.processes:
            if p.gpu_index != device.index:
                continue
            row: list[Cell] = [
                (str(p.pid), None),
                (terminal.printable(_na(p.username, "{}")), None),
                (terminal.printable(_na(p.name, "{}")), None),
                (_na(p.used_memory_mb, "{} MiB"), None),
                (_na(p.sm_utilization_percent, "{}%"), None),
                (self._process_type(p), None),
            ]
            if p.command_line:
                row.append((terminal.printable(shlex.join(p.command_line)), None))
            elif p.name is None and "name" in p.field_errors:  # say why the host is silent
                row.append((f"({p.field_errors['name']})", None))
            rows.append(row)
        return rows

    def _row(self, device: GPUDevice, wide: bool) -> list[Cell]:
        first: list[Cell] = [(str(device.index), None), (terminal.printable(device.name), None)]
        if not device.is_available:
            return [*first, (f"unavailable: {device.error_message}", self.style.ERROR)]
        memory, memory_style = "N/A", None
        if device.memory_used_percent is not None:
            percent = round(device.memory_used_percent)
            memory = f"{device.used_memory_mb} / {device.total_memory_mb} MiB ({percent}%)"
            memory_style = terminal.high(self.style, percent)
        util, temp = device.utilization_percent, device.temperature_c
        cells: list[Cell] = [
            *first,
            (memory, memory_style),
            (_na(util, "{}%"), terminal.high(self.style, util)),
            (_na(temp, "{} C"), terminal.hot(self.style, temp)),
        ]
        if wide:
            power = _na(device.power_draw_w, "{:.2f}")
            if device.power_limit_w is not None:
                power += f" / {device.power_limit_w:.2f} W"
            elif device.power_draw_w is not None:
                power += " W"
            cells += [
                (_na(device.memory_utilization_percent, "{}%"), None),
                (power, None),
                (_na(device.fan_speed_percent, "{}%"), None),
                (_na(device.performance_state, "{}"), None),
                (_na(device.sm_clock_mhz, "{} MHz"), None),
                (_na(device.memory_clock_mhz, "{} MHz"), None),
                self._ecc(device),
                self._remap(device),
                self._clock_events(device),
                (_na(device.pci_bus_id, "{}"), None),
                (_na(device.uuid, "{}"), None),
            ]
        return [*cells, ("OK", self.style.SUCCESS)]

    @staticmethod
    def _process_type(process: GPUProcess) -> str:
        if process.gpu_instance_id is None:
            return process.type
        return f"{process.type} MIG {process.gpu_instance_id}/{process.compute_instance_id}"

    def _ecc(self, device: GPUDevice) -> Cell:
        """Uncorrected volatile ECC errors; any is a sign of failing hardware (rules)."""
        errors = device.ecc_errors_uncorrected_volatile
        return _na(errors, "{}"), self.style.WARNING if errors else None

    def _remap(self, device: GPUDevice) -> Cell:
        if device.remapped_rows_failure:
            return "failed", self.style.ERROR
        if device.remapped_rows_pending:
            return "pending", self.style.WARNING
        if device.remapped_rows_pending is None:
            return "N/A", None
        return "no", None

    def _clock_events(self, device: GPUDevice) -> Cell:
        reasons = device.clocks_event_reasons
        if reasons is None:
            return "N/A", None
        hardware = set(HARDWARE_SLOWDOWNS).intersection(reasons)
        return ",".join(reasons) or "none", self.style.WARNING if hardware else None


def _widths(rows: list[list[Cell]], headers: Sequence[str], limit: int | None) -> list[int]:
    """The width of each column over ``rows`` (terminal.column_widths of their texts),
    the names narrowed to fit ``limit`` columns (terminal.fit)."""
    return terminal.fitted_widths(
        [[text for text, _ in row] for row in rows], headers, limit=limit, cuttable=CUTTABLE
    )


def _command_lines(options: dict[str, Any]) -> bool:
    """Whether -p shows each process's command line (its last column)."""
    return bool(options["full_command"] or conf.get("PROCESS_COMMAND_LINE") is True)


def _na(value: object, template: str) -> str:
    return "N/A" if value is None else template.format(value)
