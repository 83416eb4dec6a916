"""``manage.py gpu_fleet``: every recorded host in a terminal, or as GET hosts' JSON."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from gpu_monitor import terminal
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.serializers import HostSummarySerializer
from gpu_monitor.fleet.types import HostSummary

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
            help="Print the JSON document of GET api/gpu/hosts (count, next, previous, "
            "results) with every host on one page (default: table). With --watch, one "
            "document per line (JSON Lines).",
        )
        terminal.add_watch_arguments(parser, count=False)

    def handle(self, *args: Any, **options: Any) -> None:
        watch = terminal.Watch.from_options(options)
        try:
            watch.run(lambda: self.show(options["json"], watch), self.stdout)
        except DatabaseError as exc:
            raise CommandError(
                f"The fleet's table cannot be read ({exc}): run manage.py migrate."
            ) from exc

    def show(self, as_json: bool, watch: terminal.Watch) -> None:
        at = hosts.now()
        found = hosts.summaries(hosts.selected(at), at)
        if as_json:
            results = HostSummarySerializer(found, many=True).data
            self.stdout.write(terminal.every_page_json(results))
            return
        watch.separate(self.stdout)
        if not found:
            self.stdout.write("No host has recorded yet: run manage.py gpu_record on each node.")
            return
        counts = {state: sum(h.state == state for h in found) for state in ("up", "stale", "down")}
        self.stdout.write(", ".join(f"{n} {state}" for state, n in counts.items()))
        lines = terminal.table([COLUMNS, *(row(host) for host in found)], COLUMNS, LEFT_ALIGNED)
        for number, line in enumerate(lines):
            if number == 0:
                line = self.style.MIGRATE_HEADING(line)
            elif found[number - 1].state != "up":
                line = self.style.WARNING(line)
            elif found[number - 1].problems:
                line = self.style.ERROR(line)
            self.stdout.write(line)
