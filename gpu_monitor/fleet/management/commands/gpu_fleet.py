"""``manage.py gpu_fleet``: every recorded host in a terminal, or as GET hosts' JSON."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from gpu_monitor.commands import GPUMonitorCommand, reader_gone
from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.serializers import HostSummarySerializer
from gpu_monitor.fleet.types import HostSummary
from gpu_monitor.management.commands.gpu_devices import CLEAR_SCREEN, positive

COLUMNS = ("Host", "State", "Last seen", "GPUs", "Util", "Memory", "Hottest", "Problems")
LEFT_ALIGNED = {"Host", "State", "Last seen", "Problems"}


def ago(age_seconds: int) -> str:
    """``4 s ago``, ``3 min ago``, ``2 h ago``, ``5 d ago``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if age_seconds >= size:
            return f"{age_seconds // size} {unit} ago"
    return f"{age_seconds} s ago"


def row(host: HostSummary) -> list[str]:
    memory = (
        f"{host.used_memory_mb} / {host.total_memory_mb} MiB"
        if host.used_memory_mb is not None and host.total_memory_mb is not None
        else "N/A"
    )
    return [
        host.host,
        host.state,
        ago(host.age_seconds),
        str(host.gpu_count),
        "N/A" if host.utilization_percent is None else f"{host.utilization_percent:g}%",
        memory,
        "N/A" if host.max_temperature_c is None else f"{host.max_temperature_c} C",
        "; ".join(f"GPU {p.gpu_index}: {p.message}" for p in host.problems),
    ]


class Command(GPUMonitorCommand):
    """The table of recorded hosts (gpu_monitor.fleet), read from the database."""

    requires_system_checks = ()  # run in loops: skip the checks' cost and noise
    help = "Show every host that gpu_record records: state, last tick, GPUs and problems."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the hosts exactly as the results of GET api/gpu/hosts, every page "
            "(default: table). With --watch, one document per line (JSON Lines).",
        )
        parser.add_argument(
            "--watch",
            type=positive(float, "number of seconds"),
            metavar="SECONDS",
            help="Refresh every SECONDS until interrupted (default: print once).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            while True:
                self.show(options["json"], bool(options["watch"]))
                self.stdout.flush()
                if not options["watch"]:
                    return
                time.sleep(options["watch"])
        except KeyboardInterrupt:
            self.stdout.write("")
        except BrokenPipeError:
            # The reader went away (`gpu_fleet | head -1`): stop quietly with status 0.
            reader_gone(self.stdout)
        except DatabaseError as exc:
            raise CommandError(
                f"The fleet's table cannot be read ({exc}): run manage.py migrate."
            ) from exc

    def show(self, as_json: bool, watch: bool) -> None:
        at = hosts.now()
        found = hosts.summaries(hosts.selected(at), at)
        if as_json:
            data = HostSummarySerializer(found, many=True).data
            self.stdout.write(json.dumps(data, indent=None if watch else 2))
            return
        if watch:  # redraw in place in a terminal; elsewhere, a blank line between frames
            self.stdout.write(CLEAR_SCREEN if self.stdout.isatty() else "\n", ending="")
        if not found:
            self.stdout.write("No host has recorded yet: run manage.py gpu_record on each node.")
            return
        rows = [list(COLUMNS), *(row(host) for host in found)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        counts = {state: sum(h.state == state for h in found) for state in ("up", "stale", "down")}
        self.stdout.write(", ".join(f"{n} {state}" for state, n in counts.items()))
        for number, cells in enumerate(rows):
            line = "  ".join(
                cell.ljust(width) if COLUMNS[i] in LEFT_ALIGNED else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
            if number == 0:
                line = self.style.MIGRATE_HEADING(line)
            elif found[number - 1].state != "up":
                line = self.style.WARNING(line)
            elif found[number - 1].problems:
                line = self.style.ERROR(line)
            self.stdout.write(line)
