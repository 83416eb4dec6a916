"""``manage.py gpu_usage``: GPU-hours per user, host or GPU as a table, the API's JSON or
CSV; with ``--idle``, the GPUs held idle right now."""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError
from rest_framework.exceptions import APIException

from gpu_monitor import terminal
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.conf import conf
from gpu_monitor.params import SECONDS_PER_UNIT, YEARS, moment, parse_time, shown, whole_number
from gpu_monitor.stored import MAX_HOST_LENGTH
from gpu_monitor.usage.limits import DEFAULT_SPAN_S, MAX_IDLE_MINUTES
from gpu_monitor.usage.models import MAX_USER_LENGTH
from gpu_monitor.usage.report import idle_now, usage_report
from gpu_monitor.usage.types import BY

# The fields that name what a row is about (the others are null), as the table titles them.
KEYS: dict[str, tuple[str, ...]] = {
    "user": ("user",),
    "host": ("host",),
    "gpu": ("host", "gpu_index", "gpu_uuid"),
    "host,user": ("host", "user"),
}
KEY_TITLES = {"host": "Host", "gpu_index": "GPU", "gpu_uuid": "UUID", "user": "User"}
IDLE_FIELDS = ("host", "gpu_index", "gpu_uuid", "user", "idle_since", "memory_mb")
_DURATION = re.compile(r"[0-9]+[" + "".join(SECONDS_PER_UNIT) + "]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection characters
# The years of an ISO time that params.TIME_PATTERN accepts (a test holds them together).


def hours(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.2f}"


def percent(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.0f}%"


def mib(value: int | None) -> str:
    return "N/A" if value is None else f"{value} MiB"


def parsed(iso: str) -> datetime.datetime:
    """An API time (``2026-11-28T08:00:00Z``)."""
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def when(iso: str | None) -> str:
    """An API time as ``2026-11-28 08:00`` UTC."""
    if not iso:
        return "N/A"
    return parsed(iso).astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def duration(seconds: int) -> str:
    """``3 h 05 min``, ``2 d 4 h``, ``12 min``."""
    minutes = max(0, seconds // 60)
    if minutes >= 1440:
        return f"{minutes // 1440} d {minutes % 1440 // 60} h"
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min"


def notified(told: dict[str, Any]) -> str:
    """``2x, last 2026-11-28 08:45`` (UTC), or ``no``: how often the holder was told."""
    return f"{told['count']}x, last {when(told['last'])}" if told["count"] else "no"


# The figures of a row, titled and formatted as the table shows them.
METRICS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("GPU-hours", "gpu_hours", hours),
    ("Idle", "idle_gpu_hours", hours),
    ("Active", "active_gpu_hours", hours),
    ("Shared", "shared_gpu_hours", hours),
    ("Util", "utilization_percent", percent),
    ("Max mem", "max_memory_mb", mib),
    ("Mem GiB-h", "memory_gib_hours", hours),
    ("First seen", "first_seen", when),
    ("Last seen", "last_seen", when),
)
LEFT_ALIGNED = {
    "Host",
    "UUID",
    "User",
    "First seen",
    "Last seen",
    "Idle since",
    "Idle for",
    "Notified",
}
CUTTABLE = {"Host", "UUID", "User"}  # cut to fit the terminal (terminal.fit); never a number


def cell(value: Any) -> Any:
    """A value as a CSV cell: null is empty; a text beginning with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return (a user or host name: anyone can name a Unix user
    so) gets a leading ``'``, which spreadsheets show and never run as a formula (OWASP,
    CSV injection). Numbers are left as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def time_argument(name: str) -> Callable[[str], str]:
    """An argparse type: a time as the API takes it, or a duration back from now
    (``30d`` is ``-30d``)."""

    def parse(text: str) -> str:
        value = f"-{text}" if _DURATION.fullmatch(text) else text
        try:
            parse_time(name, value, 0, 0)
        except APIException as exc:
            raise argparse.ArgumentTypeError(
                f"not a time or a duration like 30d, 12h, 2w, an ISO 8601 time of the years "
                f"{YEARS} or 'now': {shown(text)}"
            ) from exc
        return value

    return parse


def name_argument(limit: int) -> Callable[[str], str]:
    """An argparse type: a host or user name as the API takes it (at most ``limit``
    characters, no NUL)."""

    def parse(text: str) -> str:
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"longer than {limit} characters: {shown(text)}")
        if "\x00" in text:
            raise argparse.ArgumentTypeError(f"contains a NUL character: {shown(text)}")
        return text

    return parse


def idle_minutes(text: str) -> int:
    """An argparse type: minutes as ``GET usage/idle`` takes them, 1 to 10080."""
    minutes = whole_number(text)
    if minutes is None or not 1 <= minutes <= MAX_IDLE_MINUTES:
        raise argparse.ArgumentTypeError(
            f"a whole number of minutes from 1 to {MAX_IDLE_MINUTES}, not {shown(text)}"
        )
    return minutes


class Command(GPUMonitorCommand):
    """GPU-hours per user (or host, GPU) from the usage that gpu_record records."""

    requires_system_checks = ()  # a report read from the database: no checks' cost
    help = "Show who used how many GPU-hours, idle and active, and the GPUs held idle now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=time_argument("since"),
            metavar="TIME",
            help="Start of the window: a duration back from now (30d, 12h, 2w), an ISO 8601 "
            "time (UTC without an offset) or 'now' (default: 7 days before --until).",
        )
        parser.add_argument(
            "--until",
            type=time_argument("until"),
            metavar="TIME",
            help="End of the window, in the same forms as --since (default: now).",
        )
        parser.add_argument(
            "--by",
            choices=BY,
            metavar="BY",
            help=f"One row per {', '.join(BY[:-1])} or {BY[-1]} (one per host and user pair) "
            "(default: user).",
        )
        parser.add_argument(
            "--host",
            type=name_argument(MAX_HOST_LENGTH),
            help="Only this host (default: every host).",
        )
        parser.add_argument(
            "--user",
            type=name_argument(MAX_USER_LENGTH),
            help="Only this user (default: every user).",
        )
        parser.add_argument(
            "--idle",
            nargs="?",
            const=conf.get("USAGE_IDLE_MINUTES"),
            type=idle_minutes,
            metavar="MINUTES",
            help="List the GPUs held right now by a user whose every sample of the last "
            f"MINUTES was idle, 1 to {MAX_IDLE_MINUTES} (default without a value: the "
            "USAGE_IDLE_MINUTES setting, 60 unless set, as GET usage/idle).",
        )
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--json",
            action="store_true",
            help="Print the JSON of GET api/gpu/usage (with --idle: usage/idle) (default: table).",
        )
        output.add_argument(
            "--csv",
            action="store_true",
            help="Print CSV with a header row, one line per row, for a spreadsheet "
            "(default: table).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["idle"] is not None:
                self.idle(options)
            else:
                self.report(options)
            self.stdout.flush()  # a reader gone now is a BrokenPipeError here, not at exit
        except APIException as exc:  # a 400 of the API: the same words, exit 2
            raise CommandError(str(exc.detail), returncode=2) from exc
        except DatabaseError as exc:
            raise CommandError(
                f"The usage tables cannot be read ({exc}): run manage.py migrate."
            ) from exc

    def report(self, options: dict[str, Any]) -> None:
        now = int(time.time())
        until = parse_time("until", options["until"], now, now)
        since = parse_time("since", options["since"], now, until - DEFAULT_SPAN_S)
        if since >= until:
            raise CommandError(
                f"--since must be before --until ({when_epoch(since)} >= {when_epoch(until)} UTC).",
                returncode=2,
            )
        by = options["by"] or "user"
        found = usage_report(
            since=since, until=until, by=by, host=options["host"], user=options["user"]
        )
        if options["json"]:
            self.stdout.write(terminal.api_json(found))
        elif options["csv"]:
            self.write_csv(found["rows"], [*KEYS[by], *(field for _, field, _ in METRICS)])
        else:
            self.report_table(found)

    def idle(self, options: dict[str, Any]) -> None:
        given = [f"--{name}" for name in ("since", "until", "by") if options[name]]
        if given:
            raise CommandError(
                f"--idle lists the GPUs held idle now (of every user, or --user, on every "
                f"host, or --host): drop {', '.join(given)}.",
                returncode=2,
            )
        found = idle_now(minutes=options["idle"], host=options["host"], user=options["user"])
        if options["json"]:
            self.stdout.write(terminal.api_json(found))
        elif options["csv"]:
            self.write_csv(
                found["gpus"], ["host", "gpu_index", "gpu_uuid", "user", "idle_since", "memory_mb"]
            )
        else:
            self.idle_table(found)

    def write_csv(self, rows: list[dict[str, Any]], fields: Sequence[str]) -> None:
        """A header row of the API's field names, then a line per row (null: empty; a
        name a spreadsheet would run as a formula: ``cell``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(fields)
        writer.writerows([[cell(row[f]) for f in fields] for row in rows])
        self.stdout.write(buffer.getvalue(), ending="")

    def report_table(self, found: dict[str, Any]) -> None:
        rows = found["rows"]
        window = f"{when(found['since'])} to {when(found['until'])} UTC"
        if not rows:
            self.stdout.write(f"No GPU usage recorded from {window}.")
            return
        keys = KEYS[found["by"]]
        titles = [KEY_TITLES[k] for k in keys] + [title for title, _, _ in METRICS]
        lines = [titles]
        for row in rows:
            lines.append(
                [terminal.printable(str(row[k])) for k in keys]
                + [show(row[field]) for _, field, show in METRICS]
            )
        total = found["total"]
        lines.append(
            ["Total"] + [""] * (len(keys) - 1) + [show(total.get(f)) for _, f, show in METRICS]
        )
        self.stdout.write(f"GPU usage by {found['by'].replace(',', ' and ')}, {window}")
        for number, line in enumerate(self.table(lines, titles)):
            if number == 0:
                line = self.style.MIGRATE_HEADING(line)
            elif number == len(lines) - 1:
                line = self.style.MIGRATE_LABEL(line)
            self.stdout.write(line)

    def table(self, lines: list[list[str]], titles: list[str]) -> list[str]:
        """The table's lines, names cut to fit the terminal (terminal.columns)."""
        return terminal.table(
            lines,
            titles,
            LEFT_ALIGNED,
            limit=terminal.columns(self.stdout),
            cuttable=CUTTABLE,
            cut_middle={"Host"},  # names of one fleet differ at the end (node-01, node-02)
        )

    def idle_table(self, found: dict[str, Any]) -> None:
        gpus = found["gpus"]
        minutes = found["minutes"]
        if not gpus:
            self.stdout.write(
                f"No GPU is held by a user whose every sample of the last {minutes} min was idle."
            )
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        # "Notified" only with gpu_monitor.notify installed (else the field is null).
        told = any(g["notified"] is not None for g in gpus)
        titles = ["Host", "GPU", "User", "Idle since", "Idle for", "Memory"]
        titles += ["Notified", "UUID"] if told else ["UUID"]
        lines = [titles] + [
            [
                terminal.printable(g["host"]),
                str(g["gpu_index"]),
                terminal.printable(g["user"]),
                when(g["idle_since"]),
                duration(int((now - parsed(g["idle_since"])).total_seconds())),
                mib(g["memory_mb"]),
                *([notified(g["notified"])] if told else []),
                g["gpu_uuid"] or "",
            ]
            for g in gpus
        ]
        count = len({(g["host"], g["gpu_uuid"]) for g in gpus})  # two holders: one GPU
        holders = f", {len(gpus)} holders" if len(gpus) != count else ""
        self.stdout.write(
            f"{count} GPU(s) held with every sample idle for {minutes} min or more (UTC)" + holders
        )
        for number, line in enumerate(self.table(lines, titles)):
            self.stdout.write(
                self.style.MIGRATE_HEADING(line) if number == 0 else self.style.WARNING(line)
            )


def when_epoch(epoch: int) -> str:
    return moment(epoch).strftime("%Y-%m-%d %H:%M")
