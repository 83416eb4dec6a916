"""gpu_monitor.terminal fits a table to the terminal: COLUMNS or the terminal's width (no
limit for a pipe), names cut with an ellipsis by display width, numbers never; and
NO_COLOR (gpu_monitor.commands) is --no-color."""

from __future__ import annotations

import io
import os
import pty

import pytest
from django.core.management.base import OutputWrapper

from gpu_monitor import commands, terminal


def test_cut_keeps_a_text_that_fits_and_ends_a_long_one_with_an_ellipsis() -> None:
    assert terminal.cut("node-1", 6) == "node-1"
    assert terminal.cut("node-12", 6) == "node-\u2026"
    assert terminal.width(terminal.cut("x" * 255, 20)) == 20


def test_cut_counts_a_wide_character_as_two_columns() -> None:
    cut = terminal.cut("\u8282\u70b9\u8282\u70b9\u8282\u70b9", 6)  # six wide characters

    assert cut == "\u8282\u70b9\u2026" and terminal.width(cut) == 5


def test_fit_narrows_the_widest_cuttable_column_and_no_other() -> None:
    # Host (255), GPU (3), User (40): 255 + 3 + 40 + 2 gaps of 2 = 302 columns.
    fitted = terminal.fit([255, 3, 40], [True, False, True], 80, [4, 3, 4])

    assert sum(fitted) + 4 == 80
    assert fitted[1] == 3
    assert abs(fitted[0] - fitted[2]) <= 1  # the widest lost columns first


def test_fit_stops_at_each_column_floor() -> None:
    fitted = terminal.fit([255, 30], [True, False], 20, [12, 5])

    assert fitted == [12, 30]  # too wide still: the numbers stay whole, the title too


def test_fit_without_a_limit_changes_nothing() -> None:
    assert terminal.fit([255, 3], [True, False], None, [4, 3]) == [255, 3]


def test_a_table_fits_its_limit_with_every_number_whole() -> None:
    rows = [["Host", "GPU-hours"], ["n" * 255, "12.50"], ["short", "0.25"]]

    lines = terminal.table(rows, rows[0], {"Host"}, limit=40, cuttable={"Host"})

    assert max(map(terminal.width, lines)) == 40
    assert lines[1].endswith("\u2026  12.50") and lines[2].startswith("short  ")


def test_a_message_row_is_never_cut() -> None:
    rows = [["GPU", "Name", "State"], ["0", "n" * 50, "OK"], ["1", "unavailable: " + "e" * 80]]

    lines = terminal.table(rows, rows[0], {"Name"}, limit=30, cuttable={"Name"})

    assert lines[2].endswith("e" * 80)


def test_columns_reads_columns_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")

    assert terminal.columns(OutputWrapper(io.StringIO())) == 132


@pytest.mark.parametrize("given", ["", "0", "wide", "-5"])
def test_columns_is_no_limit_for_a_pipe(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", given)

    assert terminal.columns(OutputWrapper(io.StringIO())) is None


def test_columns_is_the_terminal_width_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    leader, follower = pty.openpty()
    try:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 97, 0, 0))
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert terminal.columns(OutputWrapper(tty)) == 97
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({"NO_COLOR": "1"}, True), ({"NO_COLOR": "0"}, True), ({"NO_COLOR": ""}, False), ({}, False)],
)
def test_no_color_is_set_and_not_empty(environ: dict[str, str], expected: bool) -> None:
    assert commands.no_color(environ) is expected


@pytest.mark.parametrize(
    ("text", "size", "shown"),
    [
        ("rack01-node17", 9, "rack…de17"),
        ("rack01-node17", 13, "rack01-node17"),
        ("計算ノード-17", 8, "計…ド-17"),  # wide characters: two columns each
    ],
)
def test_cut_in_the_middle_keeps_both_ends_in_size_columns(
    text: str, size: int, shown: str
) -> None:
    cut = terminal.cut(text, size, middle=True)

    assert cut == shown
    assert terminal.width(cut) <= size
