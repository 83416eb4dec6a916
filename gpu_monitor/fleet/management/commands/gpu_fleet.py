"""``manage.py gpu_fleet``: every recorded host in a terminal, or as GET hosts' JSON."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError
from rest_framework.exceptions import ParseError

from gpu_monitor import terminal
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.limits import DEFAULT_SORT, PROBLEM_VALUES, SORTS, HostFilters, host_filters
from gpu_monitor.fleet.serializers import HostSummarySerializer
from gpu_monitor.fleet.types import STATES, HostSummary

COLUMNS = ("Host", "State", "Last seen", "GPUs", "Util", "Memory", "Hottest", "Problems")
LEFT_ALIGNED = {"Host", "State", "Last seen", "Problems"}
CUTTABLE = {"Host", "Problems"}  # cut to fit the terminal (terminal.fit); never a number


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
        terminal.printable(host.host),
        host.state,
        ago(host.age_seconds),
        str(host.gpu_count),
        "N/A" if host.utilization_percent is None else f"{host.utilization_percent:g}%",
        memory,
        "N/A" if host.max_temperature_c is None else f"{host.max_temperature_c} C",
        terminal.printable("; ".join(f"GPU {p.gpu_index}: {p.message}" for p in host.problems)),
    ]


def host_name_text(text: str) -> str:
    """An argparse type: ``-q`` as GET hosts' ``?q=`` takes it (``limits.host_filters``)."""
    try:
        return host_filters(q=text).q
    except ParseError as exc:
        raise argparse.ArgumentTypeError(str(exc.detail)) from exc


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
        parser.add_argument(
            "--state",
            choices=STATES,
            help="Only hosts in this state (GET hosts' ?state=).",
        )
        parser.add_argument(
            "--problem",
            choices=[value for value in PROBLEM_VALUES if value],
            help="1: only hosts with a hardware problem; 0: only those without "
            "(GET hosts' ?problem=).",
        )
        parser.add_argument(
            "-q",
            type=host_name_text,
            default="",
            metavar="TEXT",
            help="Only hosts whose name contains TEXT, in any case (GET hosts' ?q=).",
        )
        parser.add_argument(
            "--sort",
            choices=list(SORTS),
            default=DEFAULT_SORT,
            help="The order of the hosts (GET hosts' ?sort=): "
            + "; ".join(f"{name}: {text}" for name, text in SORTS.items())
            + ".",
        )
        terminal.add_watch_arguments(parser, count=False)

    def handle(self, *args: Any, **options: Any) -> None:
        watch = terminal.Watch.from_options(options)
        try:
            filters = host_filters(
                options.get("state"),
                options.get("problem"),
                options.get("q") or "",
                options.get("sort"),
            )
        except ParseError as exc:
            raise CommandError(str(exc.detail)) from exc
        try:
            watch.run(lambda: self.show(options["json"], watch, filters), self.stdout)
        except DatabaseError as exc:
            raise CommandError(
                f"The fleet's table cannot be read ({exc}): run manage.py migrate."
            ) from exc

    def show(self, as_json: bool, watch: terminal.Watch, filters: HostFilters) -> None:
        at = hosts.now()
        found = hosts.summaries(hosts.filtered(at, filters), at)
        if as_json:
            results = HostSummarySerializer(found, many=True).data
            self.stdout.write(terminal.every_page_json(results))
            return
        watch.separate(self.stdout)
        if not found:
            self.stdout.write(
                "No host matches these filters."
                if filters != HostFilters(sort=filters.sort)
                else "No host has recorded yet: run manage.py gpu_record on each node."
            )
            return
        counts = {state: sum(h.state == state for h in found) for state in ("up", "stale", "down")}
        self.stdout.write(", ".join(f"{n} {state}" for state, n in counts.items()))
        lines = terminal.table(
            [COLUMNS, *(row(host) for host in found)],
            COLUMNS,
            LEFT_ALIGNED,
            limit=terminal.columns(self.stdout),
            cuttable=CUTTABLE,
            cut_middle={"Host"},  # names of one fleet differ at the end (node-01, node-02)
        )
        for number, line in enumerate(lines):
            if number == 0:
                line = self.style.MIGRATE_HEADING(line)
            elif found[number - 1].state != "up":
                line = self.style.WARNING(line)
            elif found[number - 1].problems:
                line = self.style.ERROR(line)
            self.stdout.write(line)
