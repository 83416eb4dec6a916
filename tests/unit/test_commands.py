"""``gpu_monitor.commands``: --verbosity sets the ``gpu_monitor`` logger's level while a
command runs, and puts back what LOGGING had."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from gpu_monitor.commands import SILENT, log_verbosity

PACKAGE = logging.getLogger("gpu_monitor")
MODULE = logging.getLogger("gpu_monitor.manager.session")


@pytest.fixture
def configured() -> Iterator[None]:
    """The package logger as a test sets it; put back afterwards."""
    before = PACKAGE.level
    yield
    PACKAGE.setLevel(before)


@pytest.mark.parametrize(
    ("logging_level", "verbosity", "inside"),
    [
        (logging.INFO, 0, SILENT),
        (logging.INFO, 1, logging.WARNING),
        (logging.INFO, 2, logging.INFO),
        (logging.INFO, 3, logging.DEBUG),
        (logging.ERROR, 1, logging.ERROR),  # 0 and 1 never make it louder than LOGGING
        (logging.ERROR, 0, SILENT),
        (logging.ERROR, 2, logging.INFO),  # 2 and 3: what was asked for
        (logging.DEBUG, 2, logging.INFO),
    ],
)
def test_the_level_follows_verbosity_and_is_put_back(
    configured: None, logging_level: int, verbosity: int, inside: int
) -> None:
    PACKAGE.setLevel(logging_level)

    with log_verbosity(verbosity):
        during = MODULE.getEffectiveLevel()

    assert during == inside
    assert PACKAGE.level == logging_level


def test_the_level_is_put_back_when_the_command_raises(configured: None) -> None:
    PACKAGE.setLevel(logging.INFO)

    with pytest.raises(RuntimeError), log_verbosity(0):
        raise RuntimeError("the command failed")

    assert PACKAGE.level == logging.INFO


def test_silent_drops_even_critical(configured: None, caplog: pytest.LogCaptureFixture) -> None:
    PACKAGE.setLevel(logging.DEBUG)

    with log_verbosity(0):
        MODULE.critical("not written")
    MODULE.critical("written")

    assert [r.getMessage() for r in caplog.records] == ["written"]


def test_without_a_handler_info_goes_to_the_stream(
    configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project without LOGGING for gpu_monitor: Python's last resort writes warnings
    only, so at -v 2 the command writes the INFO lines itself, the message alone."""
    monkeypatch.setattr(PACKAGE, "hasHandlers", lambda: False)
    stream = io.StringIO()
    handlers = list(PACKAGE.handlers)

    with log_verbosity(2, stream):
        MODULE.info("NVML initialized successfully. Found %d GPU(s)", 2)
        MODULE.debug("not at -v 2")
    MODULE.info("after the command")

    assert stream.getvalue() == "NVML initialized successfully. Found 2 GPU(s)\n"
    assert PACKAGE.handlers == handlers


def test_with_a_handler_no_second_one_is_added(configured: None) -> None:
    assert PACKAGE.hasHandlers()  # pytest's capture, as a project's LOGGING would
    stream = io.StringIO()

    with log_verbosity(3, stream):
        MODULE.info("to LOGGING's handlers only")

    assert stream.getvalue() == ""


def test_every_command_of_the_app_and_its_sub_apps_honours_verbosity() -> None:
    """Each management command of gpu_monitor and of its sub-apps is a GPUMonitorCommand,
    so -v sets what its loggers say (a command on plain BaseCommand would print the
    library's INFO lines at -v 1 under a project's LOGGING)."""
    from django.core.management import get_commands, load_command_class

    from gpu_monitor.commands import GPUMonitorCommand

    ours = {name: app for name, app in get_commands().items() if app.split(".")[0] == "gpu_monitor"}

    assert set(ours) >= {
        "gpu_devices",
        "gpu_record",
        "gpu_history_maintain",
        "gpu_fleet",
        "gpu_usage",
    }
    plain = [
        name
        for name, app in ours.items()
        if not isinstance(load_command_class(app, name), GPUMonitorCommand)
    ]
    assert plain == []


def test_a_reader_that_goes_away_ends_a_command_quietly() -> None:
    """A GPUMonitorCommand whose output's reader went away (BrokenPipeError) returns as a
    command that finished, instead of the traceback and status 1 of a plain command."""
    from django.core.management.base import BaseCommand

    from gpu_monitor.commands import GPUMonitorCommand

    class Writes:
        def handle(self, *args: object, **options: object) -> None:
            self.stdout.write("first line")  # type: ignore[attr-defined]
            raise BrokenPipeError(32, "Broken pipe")

    class Ours(Writes, GPUMonitorCommand):
        requires_system_checks = ()

    class Plain(Writes, BaseCommand):
        requires_system_checks = ()

    out = io.StringIO()
    Ours(stdout=out).run_from_argv(["manage.py", "ours"])
    assert out.getvalue() == "first line\n"
    with pytest.raises(BrokenPipeError):
        Plain(stdout=io.StringIO()).execute(verbosity=1, no_color=False, force_color=False)
