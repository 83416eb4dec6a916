"""``manage.py gpu_notify``: tell each holder of a GPU held idle, once per idle episode and
step, and the admins what was told (docs/notify.md)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from gpu_monitor import terminal
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.conf import conf
from gpu_monitor.notify.messages import IdleHold, Outcome, gpu_count
from gpu_monitor.notify.run import EMAIL, Result, idle_minutes, notify
from gpu_monitor.params import duration

MAX_LOOP = ("1d", 86400)


def loop_seconds(text: str) -> int:
    return duration(text, MAX_LOOP)


def gpus(holds: tuple[IdleHold, ...]) -> str:
    """``node-1 GPU 0 (first notice), node-2 GPU 3 (reminder 1)``."""
    return ", ".join(
        f"{terminal.printable(h.host)} GPU {h.gpu_index} "
        + ("(first notice)" if h.step == 0 else f"(reminder {h.step})")
        for h in holds
    )


def recipient(outcome: Outcome) -> str:
    """``alice <alice@example.org> by e-mail``, ``alice by webhook (hooks.example.org)``."""
    user = terminal.printable(outcome.user)
    address = terminal.printable(outcome.address)
    if outcome.channel == EMAIL:
        return f"{user} <{address}> by e-mail" if address else user
    return f"{user} by webhook ({address})"


class Command(GPUMonitorCommand):
    """Notices to the holders of idle GPUs, and a digest to the admins."""

    help = "Tell whoever holds a GPU idle (e-mail, a webhook) and send the admins a digest."
    requires_system_checks = ()  # the setting is judged below (conf.problems), once

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what would be sent and to whom; send and record nothing.",
        )
        parser.add_argument(
            "--loop",
            type=loop_seconds,
            metavar="DURATION",
            help="Run again every DURATION (5m, 1h; a bare number is seconds) until "
            f"SIGTERM or Ctrl-C, at most {MAX_LOOP[0]} (default: run once, from cron or a "
            "systemd timer).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = conf.problems()
        if problems:
            said = "; ".join(f"{problem.id}: {problem.message}" for problem in problems)
            raise CommandError(
                f"GPU_MONITOR is misconfigured: {said}; run manage.py check", returncode=2
            )
        self.verbosity = options["verbosity"]
        if options["loop"] is None:
            if not self.run_once(options["dry_run"], loop=False):
                raise CommandError("Some notices could not be sent (above).")
            return
        stopping = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if self.verbosity >= 1:
                self.stdout.write(
                    f"Telling the holders of idle GPUs every {options['loop']} s; "
                    "SIGTERM or Ctrl-C stops."
                )
            while not stopping.is_set():
                try:
                    self.run_once(options["dry_run"], loop=True)
                except CommandError as exc:  # the database: said, and tried again
                    self.stderr.write(str(exc))
                if stopping.wait(options["loop"]):
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run_once(self, dry_run: bool, loop: bool) -> bool:
        """One run, said on stdout (failures on stderr); whether every send went."""
        try:
            result = notify(dry_run=dry_run)
        except DatabaseError as exc:
            raise CommandError(
                f"The usage or notice tables cannot be read or written ({exc}): "
                "run manage.py migrate."
            ) from exc
        self.say(result, dry_run, loop)
        return result.ok

    def say(self, result: Result, dry_run: bool, loop: bool) -> None:
        said = self.stdout.write if self.verbosity >= 1 else (lambda text: None)
        if not result.outcomes:
            if self.verbosity >= (2 if loop else 1):
                said(
                    f"Nothing new to tell: {gpu_count(result.idle)} GPU(s) held idle for "
                    f"{idle_minutes()} min or more."
                )
            return
        for outcome in result.outcomes:
            if dry_run:
                told = f"Would tell {recipient(outcome)}" if outcome.ok else None
                told = told or f"Would not tell {recipient(outcome)}: {outcome.error}"
                said(f"{told}: {gpus(outcome.holds)}.")
            elif outcome.ok:
                said(f"Told {recipient(outcome)}: {gpus(outcome.holds)}.")
            elif not outcome.address:
                said(
                    f"Could not tell {recipient(outcome)} ({outcome.error}): {gpus(outcome.holds)}."
                )
            else:
                self.stderr.write(
                    f"Failed to tell {recipient(outcome)}: {terminal.printable(outcome.error)}"
                )
        if dry_run:
            if result.digest_to:
                said(f"Would send the digest to {', '.join(result.digest_to)}.")
            return
        if result.digest_to:
            said(f"Digest sent to {', '.join(result.digest_to)}.")
        elif result.no_admins:
            said("No digest: neither NOTIFY_ADMINS nor ADMINS names anyone to send it to.")
        if result.digest_error:
            self.stderr.write(f"Failed to send the digest to the admins: {result.digest_error}")
