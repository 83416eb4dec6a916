"""``manage.py gpu_history_maintain``: the history tables' upkeep, run from one place."""

from __future__ import annotations

import argparse
import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, router
from django.db.models import Model

from gpu_monitor.commands import GPUMonitorCommand, reader_gone
from gpu_monitor.history import maintenance, partitions
from gpu_monitor.history.models import Event, Rollup, Sample
from gpu_monitor.history.retention import delete_from_default, delete_older, older
from gpu_monitor.params import MAX_RETENTION, duration, iso, retention, whole_number

MAX_AHEAD = 366


def ahead(text: str) -> int:
    """A whole number of days from 0 to MAX_AHEAD."""
    days = whole_number(text.strip())
    if days is None or days > MAX_AHEAD:
        raise argparse.ArgumentTypeError(
            f"the days ahead are a whole number from 0 to {MAX_AHEAD}, not {text!r}"[:120]
        )
    return days


def now() -> int:
    """The Unix time the run starts (a function, so that tests can move it)."""
    return int(time.time())


def days(found: list[int]) -> str:
    """``2026-12-03 .. 2026-12-09`` (or one day) for a list of day starts."""
    first, last = partitions.day_label(found[0]), partitions.day_label(found[-1])
    return first if first == last else f"{first} .. {last}"


class Command(GPUMonitorCommand):
    """Create the coming days' sample partitions (PostgreSQL), apply the retention to the
    samples, rollups and events, then run each maintenance task the sub-apps registered.
    Run it from one place (cron, a systemd timer), under a role that may delete and
    create tables: never from the nodes."""

    help = (
        "Create the coming days' partitions of the history samples (PostgreSQL), delete "
        "the history older than the retention (dropping whole days where partitioned) and "
        "run the sub-apps' maintenance tasks."
    )
    # No system checks: some open the database, whose errors this command reports itself.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--ahead",
            type=ahead,
            default=7,
            metavar="DAYS",
            help="Have a partition for today and each of the next DAYS days, where the "
            f"samples are partitioned (default: 7; at most {MAX_AHEAD}).",
        )
        parser.add_argument(
            "--retention",
            type=retention,
            default=duration("7d"),
            metavar="DURATION",
            help="Delete samples, rollups and events older than this: 7d, 12h, 30m, or "
            f"'off' (default: 7d, as gpu_record's; at most {MAX_RETENTION[0]}). Where the "
            "samples are partitioned by day, a day goes once all of it is older.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would be created, dropped and deleted; change nothing and run "
            "no task (default: do it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = now()
        alias = router.db_for_write(Sample)
        dry = options["dry_run"]
        try:
            partitioned = partitions.is_partitioned(alias)
            if partitioned:
                self.create_ahead(alias, started, options["ahead"], dry)
            else:
                self.say(
                    f"partitions: none (the samples table of database {alias!r} is not "
                    "partitioned: old samples are deleted in batches)"
                )
            if options["retention"] is None:
                self.say("retention: off, nothing deleted")
            else:
                cutoff = started - options["retention"]
                if partitioned:
                    self.drop_days(alias, cutoff, dry)
                else:
                    self.delete("samples", Sample, cutoff, dry)
                self.delete("rollups", Rollup, cutoff, dry)
                self.delete("events", Event, cutoff, dry)
        except DatabaseError as exc:
            raise CommandError(f"Database error on {alias!r}: {str(exc).strip()}") from exc
        if dry:
            return
        failed = []
        for task in maintenance.registered():
            try:
                self.say(task(started, alias))
            except DatabaseError as exc:
                name = getattr(task, "__qualname__", repr(task))
                self.stderr.write(f"{name}: database error: {str(exc).strip()}")
                failed.append(name)
        if failed:
            raise CommandError(f"{len(failed)} maintenance task(s) failed: {', '.join(failed)}")

    def say(self, line: str) -> None:
        """One line of the report; a reader that went away (``| head -1``) does not stop
        the maintenance: the rest runs, its lines unread."""
        try:
            self.stdout.write(line)
            self.stdout.flush()
        except BrokenPipeError:
            reader_gone(self.stdout)

    def create_ahead(self, alias: str, started: int, count: int, dry: bool) -> None:
        missing = partitions.days_to_create(alias, started, count + 1)
        today = partitions.day_start(started)
        span = f"today and {count} day(s) ahead ({days([today, today + count * partitions.DAY])})"
        there = count + 1 - len(missing)
        if dry:
            self.say(f"partitions: {span}: would create {len(missing)}, {there} already there")
            return
        moved = sum(partitions.create_day(alias, start).moved for start in missing)
        line = f"partitions: {span}: {len(missing)} created, {there} already there"
        if moved:
            line += f"; {moved} row(s) moved out of the DEFAULT partition"
        self.say(line)

    def drop_days(self, alias: str, cutoff: int, dry: bool) -> None:
        old = partitions.droppable(alias, cutoff)
        names = ", ".join(p.label for p in old)
        if dry:
            rows = older(Sample, alias, cutoff).count()
            self.say(
                f"samples: would drop {len(old)} partition(s) older than {iso(cutoff)}"
                + (f" ({names})" if old else "")
                + f"; {rows} row(s) older in all"
            )
            return
        slowest = max((partitions.drop(alias, p) for p in old), default=0.0)
        deleted = delete_from_default(alias, cutoff)
        self.say(
            f"samples: dropped {len(old)} partition(s) older than {iso(cutoff)}"
            + (f" ({names}; slowest DROP {slowest:.3f} s)" if old else "")
            + f"; deleted {deleted} row(s) from the DEFAULT partition"
        )

    def delete(self, label: str, model: type[Model], cutoff: int, dry: bool) -> None:
        alias = router.db_for_write(model)
        if dry:
            old = older(model, alias, cutoff).count()
            self.say(f"{label}: would delete {old} row(s) older than {iso(cutoff)}")
            return
        deleted = delete_older(model, alias, cutoff)
        self.say(f"{label}: deleted {deleted} row(s) older than {iso(cutoff)}")
