"""``manage.py gpu_record``: record the GPUs of this host into the project's database, or
push them to the site (``--push``)."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import unicodedata
import urllib.parse
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gpu_monitor import plugins
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.conf import conf
from gpu_monitor.history.buffer import Tick
from gpu_monitor.history.push import Site
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.history.wire import host_problem
from gpu_monitor.manager import get_manager
from gpu_monitor.manager.session import failures_shown_by_caller
from gpu_monitor.params import MAX_RETENTION, duration, iso, retention, shown

MAX_INTERVAL = ("1d", 86400)  # a tick a day is the least that still draws a chart
DEFAULT_RETENTION = "7d"
TOKEN_VARIABLE = "GPU_MONITOR_TOKEN"


def interval(text: str) -> int:
    return duration(text, MAX_INTERVAL)


def host_name(text: str) -> str:
    """The name to record under (the rule a pushed body's host is held to too): 1 to 255
    characters, not blank, with no "/" (the URL ``api/gpu/hosts/<host>`` names a host in
    one path segment), not "." or "..", and no control character."""
    problem = host_problem(text, "--host")
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def push_url(text: str) -> str:
    """The site's ingest URL: http or https, with a host, no user or password."""
    try:
        url = urllib.parse.urlsplit(text)
        url.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a URL ({exc}): {shown(text)}") from exc
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in text):
        raise argparse.ArgumentTypeError(f"a URL has no space or control character: {shown(text)}")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise argparse.ArgumentTypeError(
            "an http or https URL, such as https://gpus.example.org/api/gpu/ingest, "
            f"not {shown(text)}"
        )
    if url.username is not None or url.password is not None:
        raise argparse.ArgumentTypeError(
            f"the URL must not hold a user or password (the token goes in --token-file or "
            f"{TOKEN_VARIABLE})"
        )
    return text


def read_token(path: str | None) -> str:
    """The host's token: read once from ``path``, else from ``GPU_MONITOR_TOKEN``; never
    said back (a message names only where it came from)."""
    if path is not None:
        try:
            with open(path, encoding="utf-8") as file:
                token, where = file.read().strip(), f"--token-file {path}"
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise CommandError(f"--token-file {path}: cannot read it ({reason}).") from exc
        if not token:
            raise CommandError(f"--token-file {path} is empty: it holds the host's token.")
    else:
        token, where = os.environ.get(TOKEN_VARIABLE, "").strip(), TOKEN_VARIABLE
        if not token:
            raise CommandError(
                f"--push needs the host's token: in a file (--token-file PATH) or the "
                f"{TOKEN_VARIABLE} environment variable (manage.py gpu_host_token create "
                "HOST on the site prints one)."
            )
    if not all(33 <= ord(c) < 127 for c in token):
        raise CommandError(
            f"The token in {where} is not one: a token is one word of printable ASCII."
        )
    return token


class Command(GPUMonitorCommand):
    """Sample every GPU each interval into gpu_monitor.history's tables until stopped."""

    help = (
        "Record a sample of every GPU of this host each interval, and GPU events (XID), "
        "into the project's database or (--push) to the site."
    )
    # No system checks at start: some read the database (Django 6.1 asks SQLite whether it
    # supports JSON fields), and the recorder must start and buffer while it is down.
    requires_system_checks = ()

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # No abbreviations: "--token gpumon_..." must not pass as --token-file, which
        # would put the token on the command line and in the error that names the file.
        kwargs.setdefault("allow_abbrev", False)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=interval,
            default=10,
            metavar="DURATION",
            help="Seconds between ticks, which fall on wall-clock multiples of it so that "
            "hosts line up (default: 10).",
        )
        parser.add_argument(
            "--retention",
            type=retention,
            default=argparse.SUPPRESS,  # given or not: with --push it may not be
            metavar="DURATION",
            help="Delete this host's samples and events older than this: 7d, 12h, 30m; "
            "'off' never deletes (a node whose database role may not: gpu_history_maintain "
            f"keeps the retention centrally) (default: {DEFAULT_RETENTION}; at most "
            f"{MAX_RETENTION[0]}; not with --push: the site keeps it).",
        )
        parser.add_argument(
            "--host",
            type=host_name,
            default=socket.gethostname(),
            help="The host name to record under, 1 to 255 characters, no '/' or control "
            f"character, not '.' or '..' (default: this machine's, {socket.gethostname()!r}).",
        )
        parser.add_argument(
            "--processes",
            action="store_true",
            help="Also record the GPU processes in the host's state (gpu_monitor.fleet), "
            "their command lines only when PROCESS_COMMAND_LINE is True (default: not "
            "recorded).",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Record one tick, stamped with the second it reads, and exit; from cron, "
            "pass the job's period as --interval, the time each tick counts for "
            "(default: run until SIGTERM or Ctrl-C).",
        )
        parser.add_argument(
            "--push",
            type=push_url,
            metavar="URL",
            help="Post the ticks to the site's ingest endpoint, e.g. "
            "https://gpus.example.org/api/gpu/ingest, instead of writing them to a "
            "database: this node needs no database settings, only the host's token "
            "(default: write to the project's database).",
        )
        parser.add_argument(
            "--token-file",
            metavar="PATH",
            help="With --push: the file that holds the host's token (made on the site by "
            f"manage.py gpu_host_token create HOST), read once at start (default: the "
            f"{TOKEN_VARIABLE} environment variable). No option takes the token itself: "
            "a command line is readable by every user of the machine.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = conf.problems()  # what the system checks would say, without the database
        if problems:
            said = "; ".join(f"{problem.id}: {problem.message}" for problem in problems)
            raise CommandError(f"GPU_MONITOR is misconfigured: {said}; run manage.py check")
        # The tick writers are sub-apps' declarations, imported at each tick: one that
        # cannot work is refused here, as check gpu_monitor.E005 would, not in the loop.
        wrong = plugins.problems()
        if wrong:
            said = "; ".join(
                f"{app.name}: gpu_monitor.{field} {text}" for app, field, text in wrong
            )
            raise CommandError(f"A sub-app's declaration is wrong: {said}; run manage.py check")
        site, kept = self.destination(options)
        # NVML's failed initialisation is said in this command's own line (below), once,
        # not again as a warning on stderr.
        with failures_shown_by_caller():
            manager = get_manager()
        nvml_error = manager.error_message
        without = "" if nvml_error is None else f", without GPUs (NVML unavailable: {nvml_error})"
        try:
            recorder = Recorder(
                manager,
                host=options["host"],
                interval=options["interval"],
                retention_s=kept,
                buffer_ticks=conf.get("HISTORY_BUFFER_TICKS"),
                processes=options["processes"],
                push=site,
            )
        except (TypeError, ValueError) as exc:  # a setting the system checks reject
            raise CommandError(f"GPU_MONITOR['HISTORY_BUFFER_TICKS']: {exc}") from exc

        def stop(signum: int, frame: FrameType | None) -> None:
            recorder.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        if not options["once"]:
            # What is loaded by now lives as long as the process: out of every collection,
            # including the one at exit, which would take tenths of a second of the 1 s
            # that SIGTERM has to exit in.
            gc.freeze()
            if site is not None:
                keeping = f"pushing to {site.url}"
            else:
                keeping = "retention off" if kept is None else f"keeping {kept} s"
            self.stdout.write(
                f"Recording host {options['host']!r} every {options['interval']} s, "
                f"{keeping}{without}; SIGTERM or Ctrl-C stops."
            )
        try:
            recorder.run(once=options["once"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        unwritten = recorder.unwritten()
        if recorder.failure is not None:
            lost = f" ({unwritten} tick(s) not written)" if unwritten else ""
            raise CommandError(f"{recorder.failure}{lost}.")
        if unwritten:
            raise CommandError(
                f"{unwritten} tick(s) could not be written: {recorder.target} "
                + (
                    "did not answer in time."
                    if recorder.writing_since is not None
                    else f"is unreachable ({recorder.last_error})."
                )
            )
        if options["once"] and recorder.last_taken is not None and options["verbosity"] >= 1:
            if getattr(recorder.writer, "duplicates", 0):  # the site had it (a Pusher's count)
                at = iso(recorder.last_taken.epoch)
                self.stdout.write(
                    f"Host {options['host']!r} at {at}: the site had this tick already, "
                    "not written again."
                )
            else:
                self.stdout.write(written(options["host"], recorder.last_taken))

    def destination(self, options: dict[str, Any]) -> tuple[Site | None, int | None]:
        """The site to push to (None: the database) and the retention in seconds."""
        if options["push"] is None:
            if options["token_file"] is not None:
                raise CommandError("--token-file is for --push (the token of a pushing node).")
            return None, options.get("retention", duration(DEFAULT_RETENTION))
        if "retention" in options:
            raise CommandError(
                "--retention is the site's with --push: its gpu_history_maintain deletes "
                "old rows (docs/history.md)."
            )
        return Site(options["push"], read_token(options["token_file"])), None


def written(host: str, tick: Tick) -> str:
    """What ``--once`` wrote: the host, its GPUs (those lost too) and the tick's time."""
    if tick.nvml_error is not None:
        gpus = f"no GPU (NVML unavailable: {tick.nvml_error})"
    else:
        # Every GPU NVML lists, the lost ones too, as gpu_devices and GET hosts count them.
        gpus = f"{len(tick.found) + len(tick.lost)} GPU(s)"
        if tick.lost:
            gpus += f", {len(tick.lost)} lost"
    return f"Recorded host {host!r} at {iso(tick.epoch)}: {gpus}."
