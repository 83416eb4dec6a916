"""``manage.py gpu_devices``: every GPU in a terminal, or as the API's JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from gpu_monitor.commands import GPUMonitorCommand, reader_gone
from gpu_monitor.conf import conf
from gpu_monitor.manager import GPUManager, NVMLUnavailableError, get_manager
from gpu_monitor.manager.session import failures_shown_by_caller
from gpu_monitor.rules import HARDWARE_SLOWDOWNS
from gpu_monitor.types import (
    GPUDevice,
    GPUDevicesResponse,
    GPUProcess,
    GPUProcessesResponse,
    MIGDevice,
)

HIGH_PERCENT = 90  # utilisation or memory use at or above this is highlighted
HIGH_TEMPERATURE_C = 80
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
LEFT_ALIGNED = {"Name", "Bus ID", "UUID", "State", "Remap", "Clock events"}
INDENT = "     "  # MIG devices and processes: under their GPU's row
Cell = tuple[str, "Callable[[str], str] | None"]
CLEAR_SCREEN = "\x1b[H\x1b[J"  # cursor home, clear to the end: redraw in place


def positive(kind: type[float] | type[int], what: str) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, not {text!r}")
        return value

    return parse


def devices_json(devices: list[GPUDevice]) -> str:
    """The exact bytes of ``GET api/gpu/devices`` for ``devices``, without importing DRF."""
    return api_json(GPUDevicesResponse(devices, len(devices)))


def api_json(document: Any) -> str:
    """The exact bytes the API answers for the dataclass ``document``, without DRF.

    Importing DRF's serializers took 0.25 s of this command's 0.68 s on a real GPU
    machine. The dataclasses mirror the serializers field for field and in order (a test
    holds them together, and another compares this output with the API's), so their
    fields give the same document; it is dumped as DRF's JSONRenderer does, following
    REST_FRAMEWORK's UNICODE_JSON, COMPACT_JSON and STRICT_JSON.
    """
    drf = getattr(settings, "REST_FRAMEWORK", {})
    text = json.dumps(
        dataclasses.asdict(document),
        ensure_ascii=not drf.get("UNICODE_JSON", True),
        allow_nan=not drf.get("STRICT_JSON", True),
        separators=(",", ":") if drf.get("COMPACT_JSON", True) else None,
    )
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


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
        parser.add_argument(
            "--wide",
            action="store_true",
            help="Add power, fan, memory utilisation, performance state, clocks, PCI bus id "
            "and UUID to the table (default: off).",
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
        parser.add_argument(
            "--watch",
            type=positive(float, "number of seconds"),
            metavar="SECONDS",
            help="Refresh every SECONDS until interrupted (default: print once).",
        )
        parser.add_argument(
            "--count",
            type=positive(int, "whole number"),
            metavar="N",
            help="With --watch, stop after N refreshes (default: until Ctrl-C).",
        )
        self._usage_error = parser.error  # exit status 2 with the usage, as argparse's own

    def handle(self, *args: Any, **options: Any) -> None:
        if options["count"] is not None and not options["watch"]:
            self._usage_error(
                "--count N stops --watch after N refreshes: add --watch SECONDS or drop --count."
            )
        manager = get_manager()
        refreshes = 0
        try:
            while True:
                # Each failure is in the output (a row's error, N/A, the JSON's
                # error_message and field_errors): logged at DEBUG, not on stderr again.
                with failures_shown_by_caller():
                    self._show(manager, options)
                self.stdout.flush()  # a reader of a pipe sees each refresh as it happens
                refreshes += 1
                if not options["watch"] or refreshes == options["count"]:
                    return
                time.sleep(options["watch"])
        except KeyboardInterrupt:
            self.stdout.write("")
        except BrokenPipeError:
            # The reader went away (`... | head -1`): stop quietly with status 0, as
            # nvidia-smi and gpustat do.
            reader_gone(self.stdout)

    def _show(self, manager: GPUManager, options: dict[str, Any]) -> None:
        as_json, watch = options["json"], bool(options["watch"])
        status, devices = manager.get_status_and_devices()
        selected = self._select(devices, options["index"]) if status.cuda_available else []
        processes = self._processes(manager, selected, options) if options["processes"] else None
        if as_json:
            if processes is None:
                self.stdout.write(devices_json(selected))
            else:
                self.stdout.write(api_json(processes))
        if not status.cuda_available:
            raise CommandError(
                f"No NVIDIA GPU available: {status.error_message or 'NVML sees no GPU'}",
                returncode=1,
            )
        if not as_json:
            if watch:  # redraw in place in a terminal; elsewhere, a blank line between frames
                self.stdout.write(CLEAR_SCREEN if self.stdout.isatty() else "\n", ending="")
            gpus = f"{len(selected)} of {len(devices)}" if options["index"] else str(len(devices))
            lines = self._table(manager, selected, gpus, options, processes)
            self.stdout.write("\n".join(lines))

    @staticmethod
    def _processes(
        manager: GPUManager, devices: list[GPUDevice], options: dict[str, Any]
    ) -> GPUProcessesResponse:
        """The processes of the selected GPUs with host details, as the API has them."""
        from gpu_monitor import host  # psutil: 20 ms of start-up that only -p needs

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
        rows: list[list[Cell]] = [[(h, self.style.MIGRATE_HEADING) for h in headers]]
        rows += [self._row(device, wide) for device in devices]
        widths = [
            max(len(row[col][0]) for row in rows if col < len(row)) for col in range(len(headers))
        ]
        lines = [self.style.MIGRATE_HEADING(f"{versions}   {gpus} GPU(s)")]
        lines.append(self._line(rows[0], widths, headers))
        mig_rows = [[self._mig_row(mig) for mig in d.mig_devices] for d in devices]
        process_rows = [self._process_rows(d, processes) for d in devices]
        process_header: list[Cell] = [
            (h, self.style.MIGRATE_HEADING)
            for h in PROCESS_HEADERS[: None if _command_lines(options) else -1]
        ]
        mig_widths = _widths([row for group in mig_rows for row in group])
        process_widths = _widths([process_header, *(row for g in process_rows for row in g)])
        for row, migs, procs in zip(rows[1:], mig_rows, process_rows, strict=True):
            lines.append(self._line(row, widths, headers))
            lines += [INDENT + self._line(mig, mig_widths, MIG_HEADERS) for mig in migs]
            if any(len(p) > 1 for p in procs):  # a header over rows, not over a message
                procs = [process_header, *procs]
            lines += [INDENT + self._line(p, process_widths, PROCESS_HEADERS) for p in procs]
        return lines

    @staticmethod
    def _line(row: list[Cell], widths: list[int], headers: Sequence[str]) -> str:
        cells = []
        for col, (text, style) in enumerate(row):
            if col == len(row) - 1:  # the last cell (State, or an error) is not padded
                padded = text
            elif headers[col] in LEFT_ALIGNED:
                padded = text.ljust(widths[col])
            else:
                padded = text.rjust(widths[col])
            cells.append(style(padded) if style else padded)
        return "  ".join(cells)

    def _mig_row(self, mig: MIGDevice) -> list[Cell]:
        """A MIG device as nvidia-smi's MIG table has it: GI/CI, name, shared memory."""
        memory = "N/A"
        if mig.used_memory_mb is not None and mig.total_memory_mb:
            percent = round(100 * mig.used_memory_mb / mig.total_memory_mb)
            memory = f"{mig.used_memory_mb} / {mig.total_memory_mb} MiB ({percent}%)"
        return [
            (f"MIG {_na(mig.gpu_instance_id, '{}')}/{_na(mig.compute_instance_id, '{}')}", None),
            (_na(mig.name, "{}"), None),
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
                (_na(p.username, "{}"), None),
                (_na(p.name, "{}"), None),
                (_na(p.used_memory_mb, "{} MiB"), None),
                (_na(p.sm_utilization_percent, "{}%"), None),
                (self._process_type(p), None),
            ]
            if p.command_line:
                row.append((shlex.join(p.command_line), None))
            elif p.name is None and "name" in p.field_errors:  # say why the host is silent
                row.append((f"({p.field_errors['name']})", None))
            rows.append(row)
        return rows

    def _row(self, device: GPUDevice, wide: bool) -> list[Cell]:
        first: list[Cell] = [(str(device.index), None), (device.name, None)]
        if not device.is_available:
            return [*first, (f"unavailable: {device.error_message}", self.style.ERROR)]
        memory, memory_style = "N/A", None
        if device.memory_used_percent is not None:
            percent = round(device.memory_used_percent)
            memory = f"{device.used_memory_mb} / {device.total_memory_mb} MiB ({percent}%)"
            memory_style = self.style.WARNING if percent >= HIGH_PERCENT else None
        util, temp = device.utilization_percent, device.temperature_c
        cells: list[Cell] = [
            *first,
            (memory, memory_style),
            (_na(util, "{}%"), self._high(util, HIGH_PERCENT)),
            (_na(temp, "{} C"), self._high(temp, HIGH_TEMPERATURE_C)),
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
                (
                    _na(device.ecc_errors_uncorrected_volatile, "{}"),
                    self._high(device.ecc_errors_uncorrected_volatile, 1),
                ),
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

    def _high(self, value: int | None, threshold: int) -> Callable[[str], str] | None:
        return self.style.WARNING if value is not None and value >= threshold else None

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


MIG_HEADERS = ("MIG", "Name", "Memory", "UUID")
PROCESS_HEADERS = ("PID", "User", "Name", "GPU memory", "SM", "Type", "Command")
LEFT_ALIGNED.update({"MIG", "User", "Type"})


def _widths(rows: list[list[Cell]]) -> list[int]:
    """The width of each column over ``rows`` (which may be ragged; a row of one cell,
    a message, is not aligned and sets no width)."""
    rows = [row for row in rows if len(row) > 1]
    columns = max((len(row) for row in rows), default=0)
    return [max(len(row[c][0]) for row in rows if c < len(row)) for c in range(columns)]


def _command_lines(options: dict[str, Any]) -> bool:
    """Whether -p shows each process's command line (its last column)."""
    return bool(options["full_command"] or conf.get("PROCESS_COMMAND_LINE") is True)


def _na(value: object, template: str) -> str:
    return "N/A" if value is None else template.format(value)
