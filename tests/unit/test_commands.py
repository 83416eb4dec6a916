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
