"""What every ``gpu_monitor`` management command shares: ``--verbosity`` sets what the
``gpu_monitor`` loggers say while it runs, and ``NO_COLOR``; and the rule of which
processes initialise NVML at start (:func:`nvml_at_start`).

The library logs at its own levels (``NVML initialized successfully`` at INFO); a
command is quiet the way Django's are: ``-v 0`` nothing, ``-v 1`` (the default) warnings
and errors, ``-v 2`` INFO as well, ``-v 3`` DEBUG as well. ``GpuMonitorConfig.ready()``
leaves NVML to such a command, which initialises it once its verbosity is set (see
``apps.py``). A command adopts all of this by subclassing :class:`GPUMonitorCommand`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TextIO

from django.core.management.base import BaseCommand

LOGGER = "gpu_monitor"  # the package's logger: every module's logger is below it
# The management commands that serve the GPU endpoints or check a deployment: NVML at
# start and check gpu_monitor.W001 (any other command initialises it when it needs it).
SERVING = frozenset({"runserver", "testserver", "check"})
HELP = frozenset({"help", "--help", "-h", "version", "--version"})  # manage.py's own
RELOADER = "RUN_MAIN"  # set to "true" by Django's autoreloader in the child that serves
SILENT = logging.CRITICAL + 1
THRESHOLDS = {0: SILENT, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


@contextlib.contextmanager
def log_verbosity(verbosity: int, stream: TextIO | None = None) -> Iterator[None]:
    """Within this block the ``gpu_monitor`` logger's level follows ``verbosity``.

    0 and 1 only make it quieter than ``LOGGING`` made it (never louder); 2 and 3 set it
    to INFO and DEBUG, and when no handler would take the records (a project without
    ``LOGGING`` for them) they go to ``stream`` (default: stderr) as the message alone,
    as Python's last-resort handler writes warnings. A module's logger that ``LOGGING``
    gave a level of its own keeps it. The level is restored on the way out.
    """
    package = logging.getLogger(LOGGER)
    threshold = THRESHOLDS[min(max(verbosity, 0), 3)]
    configured = package.level
    handler = None
    if threshold >= logging.WARNING:
        package.setLevel(max(threshold, package.getEffectiveLevel()))
    else:
        package.setLevel(threshold)
        if not package.hasHandlers():
            handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
            package.addHandler(handler)
    try:
        yield
    finally:
        package.setLevel(configured)
        if handler is not None:
            package.removeHandler(handler)


def command_of(argv: Sequence[str]) -> str | None:
    """The management command that ``argv`` runs (``manage.py X``, ``django-admin X``,
    ``python -m django X``; ``help X`` is X's help, ``help`` and ``--version`` are
    ``help``): None for a process that runs none (a
    WSGI or ASGI server, a script, a test runner)."""
    from django.core.management import get_commands  # cached: manage.py reads it too

    commands = get_commands()
    words = list(argv[1:3])
    if words[:1] == ["help"] and len(words) == 2 and words[1] in commands:
        return words[1]
    if words and words[0] in HELP:
        return "help"  # the list of commands, or Django's version
    return words[0] if words and words[0] in commands else None


def nvml_at_start(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether this process (``argv``, default ``sys.argv``) initialises NVML when the
    apps are ready and reports check gpu_monitor.W001: one that serves the GPU endpoints
    (a WSGI or ASGI server, ``runserver`` in the child of its autoreloader or with
    ``--noreload``, ``testserver``), ``check``, or one that runs no management command (a
    script, a test runner). Not another command: the database's (``migrate``,
    ``gpu_fleet``, ``gpu_usage``, ``gpu_history_maintain``) never need NVML, and
    ``gpu_devices`` and ``gpu_record`` initialise it once their ``--verbosity`` is set;
    ``get_manager()`` still initialises it wherever it is first used."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    command = command_of(argv)
    if command is None:
        return True
    if command not in SERVING:
        return False
    if command == "runserver" and "--noreload" not in argv:
        return environ.get(RELOADER) == "true"  # the reloader's parent serves nothing
    return True


def reader_gone(stream: Any) -> None:
    """The reader of ``stream`` went away (``... | head -1``): point the stream's file at
    /dev/null, so that what is still buffered, and Python's final flush at exit, cannot
    raise BrokenPipeError again. A stream without a file (a StringIO) is left as it is."""
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def no_color(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``NO_COLOR`` asks for output without ANSI colour: set and not empty,
    whatever its value (no-color.org)."""
    return bool((os.environ if environ is None else environ).get("NO_COLOR"))


class GPUMonitorCommand(BaseCommand):
    """A management command whose ``--verbosity`` sets what the ``gpu_monitor`` loggers
    say while it runs (:func:`log_verbosity`); its records at INFO and DEBUG go to the
    command's stderr when ``LOGGING`` gives them no handler. ``NO_COLOR`` (set and not
    empty) is ``--no-color``, unless ``--force-color`` is given (a command-line option
    wins over the environment, as no-color.org asks). A reader of its output that
    goes away (``| head -1``) ends it quietly with status 0, as nvidia-smi and gpustat
    end, never with a BrokenPipe traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        if no_color() and not options.get("force_color"):
            options["no_color"] = True
        with log_verbosity(options.get("verbosity", 1), options.get("stderr")):
            try:
                return super().execute(*args, **options)
            except BrokenPipeError:
                reader_gone(self.stdout)
                return None
