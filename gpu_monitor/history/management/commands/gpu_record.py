"""``manage.py gpu_record``: record the GPUs of this host into the project's database."""

from __future__ import annotations

import argparse
import re
import signal
import socket
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gpu_monitor.conf import conf
from gpu_monitor.history.models import SECONDS_PER_UNIT
from gpu_monitor.history.recorder import Recorder
from gpu_monitor.manager import get_manager


def duration(text: str) -> int:
    """``7d``, ``12h``, ``30m``, ``90s`` or plain seconds, as whole seconds (at least 1)."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhdw]?)\s*", text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"a duration is a positive whole number with s, m, h, d or w (7d, 12h), not {text!r}"
        )
    return int(match.group(1)) * SECONDS_PER_UNIT[match.group(2) or "s"]


class Command(BaseCommand):
    """Sample every GPU each interval into gpu_monitor.history's tables until stopped."""

    help = "Record a sample of every GPU of this host each interval, and GPU events (XID)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=duration,
            default=10,
            metavar="DURATION",
            help="Seconds between ticks, which fall on wall-clock multiples of it so that "
            "hosts line up (default: 10).",
        )
        parser.add_argument(
            "--retention",
            type=duration,
            default=duration("7d"),
            metavar="DURATION",
            help="Delete this host's samples and events older than this: 7d, 12h, 30m "
            "(default: 7d).",
        )
        parser.add_argument(
            "--host",
            default=socket.gethostname(),
            help="The host name to record under (default: this machine's, "
            f"{socket.gethostname()!r}).",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Record one tick now and exit (default: run until SIGTERM or Ctrl-C).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        recorder = Recorder(
            get_manager(),
            host=options["host"],
            interval=options["interval"],
            retention_s=options["retention"],
            buffer_ticks=conf.get("HISTORY_BUFFER_TICKS"),
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            recorder.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        if not options["once"]:
            self.stdout.write(
                f"Recording host {options['host']!r} every {options['interval']} s, keeping "
                f"{options['retention']} s; SIGTERM or Ctrl-C stops."
            )
        try:
            recorder.run(once=options["once"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if recorder.buffer:
            self.stderr.write(
                f"{len(recorder.buffer)} tick(s) could not be written: the database is unreachable."
            )
