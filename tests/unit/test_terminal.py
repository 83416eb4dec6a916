"""``gpu_monitor.terminal``: the commands' watch loop, tables, JSON and marks."""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from typing import NoReturn

import pytest
from django.core.management.base import OutputWrapper
from django.core.management.color import color_style
from rest_framework.renderers import JSONRenderer

from gpu_monitor import rules, terminal

WAIT_S = 10  # how long a test waits for an event before it fails


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def output(stream: io.StringIO | None = None) -> tuple[OutputWrapper, io.StringIO]:
    stream = stream if stream is not None else io.StringIO()
    return OutputWrapper(stream), stream


# --- widths and tables ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("", 0),
        ("node-1", 6),
        ("山田", 4),  # East Asian wide
        ("\uff21\uff22", 4),  # fullwidth A and B
        ("🙂 ok", 5),  # an emoji takes two
        ("e\u0301te\u0301", 3),  # combining acute accents take none
        ("a\u200db", 2),  # a zero-width joiner takes none
        ("co\xadop", 5),  # a soft hyphen is shown
    ],
)
def test_width_counts_terminal_columns(text: str, columns: int) -> None:
    assert terminal.width(text) == columns


def test_printable_escapes_control_characters_only() -> None:
    assert terminal.printable("bad\nname\x1b[31m\x85") == "bad\\nname\\x1b[31m\\x85"
    assert terminal.printable("Zoë 山田 🙂") == "Zoë 山田 🙂"


def test_pad_counts_wide_characters_twice() -> None:
    assert terminal.pad("山田", 6, left=True) == "山田  "
    assert terminal.pad("山田", 6, left=False) == "  山田"
    assert terminal.pad("toolong", 3, left=True) == "toolong"


def test_a_table_with_wide_characters_lines_up_in_a_terminal() -> None:
    rows = [["User", "GPU-hours", "Host"], ["山田太郎", "1.00", "n1"], ["bob", "12.50", "ノード"]]

    lines = terminal.table(rows, rows[0], {"User", "Host"})

    assert lines == [
        "User      GPU-hours  Host",
        "山田太郎       1.00  n1",
        "bob           12.50  ノード",
    ]
    starts = {
        terminal.width(line[: line.index(row[2])]) for line, row in zip(lines, rows, strict=True)
    }
    assert starts == {21}


def test_column_widths_of_ragged_rows_skip_messages() -> None:
    rows = [["GPU", "Name", "State"], ["0", "H100"], ["a message across the table"]]

    assert terminal.column_widths(rows) == [3, 4, 5]
    assert terminal.column_widths([["only a message"]]) == []


def test_a_line_pads_every_cell_but_the_last_and_styles_the_padded_text() -> None:
    def loud(text: str) -> str:
        return f"<{text}>"

    cells: list[terminal.Cell] = [("1", loud), ("ab", None), ("end", loud)]

    assert terminal.line(cells, [3, 4, 9], [False, True, True]) == "<  1>  ab    <end>"


def test_a_line_has_no_trailing_space_after_an_empty_last_cell() -> None:
    cells = terminal.plain(["node-1", "34 C", ""])

    assert terminal.line(cells, [8, 6, 10], [True, False, True]) == "node-1      34 C"


# --- marks ----------------------------------------------------------------------------


def test_high_and_hot_follow_the_thresholds_of_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    style = color_style(force_color=True)
    monkeypatch.setattr(rules, "HIGH_PERCENT", 50)
    monkeypatch.setattr(rules, "HOT_TEMPERATURE_C", 40)

    assert terminal.high(style, 50) is style.WARNING
    assert terminal.high(style, 49.9) is None
    assert terminal.high(style, None) is None
    assert terminal.hot(style, 40) is style.WARNING
    assert terminal.hot(style, 39) is None
    assert terminal.hot(style, None) is None


# --- JSON -----------------------------------------------------------------------------


def test_api_json_is_drfs_rendering_on_one_line() -> None:
    data = {"name": "GPU «Ünïcode» \u2028 line", "value": 1.0, "none": None}

    text = terminal.api_json(data)

    assert text.encode() == JSONRenderer().render(data)
    assert "\n" not in text and "\\u2028" in text


def test_every_page_json_is_a_first_and_last_page() -> None:
    document = json.loads(terminal.every_page_json([{"host": "a"}, {"host": "b"}]))

    assert document == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [{"host": "a"}, {"host": "b"}],
    }


# --- the watch loop -------------------------------------------------------------------


def test_without_watch_one_frame() -> None:
    out, stream = output()
    frames: list[int] = []

    terminal.Watch().run(lambda: frames.append(1), out)

    assert frames == [1] and stream.getvalue() == ""


def test_count_ends_the_loop_after_n_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(terminal.Watch, "pause", lambda watch, s: bool(pauses.append(s)))
    watch = terminal.Watch(every=0.5, count=3)

    watch.run(lambda: None, output()[0])

    assert watch.frames == 3
    assert pauses == [0.5, 0.5]  # none after the last frame


@pytest.fixture
def thread_cleanup() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(WAIT_S)


def test_stop_ends_the_wait_at_once(thread_cleanup: list[threading.Thread]) -> None:
    """A loop that would wait an hour between frames ends as soon as it is stopped: the
    wait is an event's, not a sleep."""
    watch = terminal.Watch(every=3600)
    drawn = threading.Event()
    out, stream = output()

    def frame() -> None:
        stream.write("frame")
        drawn.set()

    loop = threading.Thread(target=watch.run, args=(frame, out))
    thread_cleanup.append(loop)
    loop.start()
    assert drawn.wait(WAIT_S)
    watch.stop()
    loop.join(WAIT_S)

    assert not loop.is_alive()
    assert watch.frames == 1 and stream.getvalue() == "frame"


def test_stop_during_a_frame_ends_the_loop_after_it() -> None:
    watch = terminal.Watch(every=3600)

    watch.run(watch.stop, output()[0])

    assert watch.frames == 1


def test_ctrl_c_ends_the_loop_with_a_newline() -> None:
    out, stream = output()

    def frame() -> None:
        stream.write("table")
        raise KeyboardInterrupt

    terminal.Watch(every=1).run(frame, out)

    assert stream.getvalue() == "table\n"


def test_a_frame_is_flushed_before_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    flushed: list[str] = []

    class Pipe(io.StringIO):
        def flush(self) -> None:
            flushed.append(self.getvalue())

    out, stream = output(Pipe())
    monkeypatch.setattr(terminal.Watch, "pause", lambda watch, seconds: True)

    terminal.Watch(every=1).run(lambda: stream.write("frame 1"), out)

    assert flushed == ["frame 1"]


@pytest.mark.parametrize(
    ("every", "stream", "written"),
    [
        (None, io.StringIO(), ""),
        (1.0, io.StringIO(), "\n"),  # a pipe or a file: a blank line between frames
        (1.0, Terminal(), terminal.CLEAR_SCREEN),  # redrawn in place
        (None, Terminal(), ""),
    ],
)
def test_separate_clears_a_terminal_only_while_watching(
    every: float | None, stream: io.StringIO, written: str
) -> None:
    out = OutputWrapper(stream)

    terminal.Watch(every=every).separate(out)

    assert stream.getvalue() == written


def test_from_options_reads_watch_and_count() -> None:
    watch = terminal.Watch.from_options({"watch": 2.0, "count": 4})

    assert (watch.every, watch.count) == (2.0, 4)


def test_count_without_watch_is_a_usage_error() -> None:
    errors: list[str] = []

    def error(message: str) -> NoReturn:
        errors.append(message)
        raise SystemExit(2)

    with pytest.raises(SystemExit):
        terminal.Watch.from_options({"watch": None, "count": 3}, error)

    assert errors == [
        "--count N stops --watch after N refreshes: add --watch SECONDS or drop --count."
    ]


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "x"])
def test_positive_rejects_what_is_not_a_positive_finite_number(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="must be a positive number"):
        terminal.positive(float, "number")(text)
