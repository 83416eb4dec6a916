"""What the app's management commands share in a terminal: the ``--watch`` loop, aligned
tables in which a wide character takes two columns and which fit the terminal's width
(:func:`columns`: a long name cut with an ellipsis), the API's JSON, and the marks that
follow the thresholds of :mod:`gpu_monitor.rules`.

``gpu_devices``, ``gpu_fleet`` and ``gpu_usage`` build on it; a sub-app's command does
too (it is part of the core, as :mod:`gpu_monitor.commands` is).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Collection, Sequence
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import CommandParser, OutputWrapper
from django.core.management.color import Style as CommandStyle

from gpu_monitor import rules

Style = Callable[[str], str]  # one of a command's ``self.style`` roles
Cell = tuple[str, Style | None]  # a cell's text and the style of its padded text
CLEAR_SCREEN = "\x1b[H\x1b[J"  # cursor home, clear to the end: redraw in place
GAP = "  "  # between two columns
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters
SOFT_HYPHEN = "\xad"  # a format character that terminals show as a hyphen
ELLIPSIS = "\u2026"  # the end of a cut cell: one column
MIN_CUT = 10  # a column that is cut keeps at least this many columns (or its title's)


# --- arguments ------------------------------------------------------------------------


def positive(kind: type[float] | type[int], what: str) -> Callable[[str], float | int]:
    """An argparse type: a finite number above 0 of ``kind`` (``what`` names it)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, not {text!r}")
        return value

    return parse


def add_watch_arguments(parser: CommandParser, *, count: bool = True) -> None:
    """``--watch SECONDS`` and (``count``) ``--count N``, as :class:`Watch` reads them."""
    parser.add_argument(
        "--watch",
        type=positive(float, "number of seconds"),
        metavar="SECONDS",
        help="Refresh every SECONDS until interrupted (default: print once).",
    )
    if count:
        parser.add_argument(
            "--count",
            type=positive(int, "whole number"),
            metavar="N",
            help="With --watch, stop after N refreshes (default: until Ctrl-C).",
        )


# --- the watch loop -------------------------------------------------------------------


class Watch:
    """Show a frame once, or (``every`` seconds) again and again until ``count`` frames,
    Ctrl-C or :meth:`stop`, flushing each so that a reader of a pipe sees it at once.

    The wait between two frames is an event's, so :meth:`stop` (from another thread)
    ends it at once; Ctrl-C ends it with a newline after the last frame, and the
    command with status 0, as ``nvidia-smi -l`` ends. A reader that goes away
    (``| head -1``) is :class:`gpu_monitor.commands.GPUMonitorCommand`'s to handle.
    """

    def __init__(self, every: float | None = None, count: int | None = None) -> None:
        self.every = every
        self.count = count
        self.frames = 0
        self._stopped = threading.Event()

    @classmethod
    def from_options(
        cls, options: dict[str, Any], usage_error: Callable[[str], NoReturn] | None = None
    ) -> Watch:
        """The loop that ``--watch`` and ``--count`` (:func:`add_watch_arguments`) ask
        for; ``--count`` without ``--watch`` is a ``usage_error`` (the parser's ``error``:
        exit status 2 with the usage)."""
        every, count = options.get("watch"), options.get("count")
        if count is not None and not every and usage_error is not None:
            usage_error(
                "--count N stops --watch after N refreshes: add --watch SECONDS or drop --count."
            )
        return cls(every, count)

    def run(self, frame: Callable[[], None], stdout: OutputWrapper) -> None:
        """Call ``frame`` as often as asked, writing to ``stdout``."""
        try:
            while True:
                frame()
                stdout.flush()
                self.frames += 1
                if not self.every or self.frames == self.count or self.pause(self.every):
                    return
        except KeyboardInterrupt:
            stdout.write("")

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` before the next frame; True when :meth:`stop` ends the loop."""
        return self._stopped.wait(seconds)

    def stop(self) -> None:
        """End the loop: at once if it waits, else after the frame it is drawing."""
        self._stopped.set()

    def separate(self, stdout: OutputWrapper) -> None:
        """Before a table's frame while watching: in a terminal, clear it to redraw in
        place; elsewhere (a pipe, a file) a blank line between two frames."""
        if self.every:
            stdout.write(CLEAR_SCREEN if stdout.isatty() else "\n", ending="")


# --- tables ---------------------------------------------------------------------------


def char_width(char: str) -> int:
    """Columns one character takes in a terminal: 2 for East Asian wide and fullwidth
    ones (CJK, most emoji), 0 for combining marks and zero-width format characters
    (an accent on the letter before it, a zero-width joiner), 1 for the others."""
    if unicodedata.east_asian_width(char) in "WF":
        return 2
    category = unicodedata.category(char)
    if category in ("Mn", "Me") or (category == "Cf" and char != SOFT_HYPHEN):
        return 0
    return 1


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal (:func:`char_width` of each character)."""
    if text.isascii():
        return len(text)
    return sum(map(char_width, text))


def printable(text: str) -> str:
    """A name as a table can show it on one line and as it is: control characters (a
    newline, an escape sequence that would recolour the terminal) escaped as Python
    writes them (``\\n``, ``\\x1b``)."""
    return CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def pad(text: str, size: int, left: bool) -> str:
    """``text`` with spaces after it (``left``) or before it, to ``size`` columns."""
    space = " " * (size - width(text))
    return text + space if left else space + text


def column_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    """The width of each column over ``rows``, which may be ragged (a row that ends
    early: its last text may run over the columns it lacks). A row of one cell is a
    message across the table, not aligned: it sets no width."""
    aligned = [row for row in rows if len(row) > 1]
    columns = max((len(row) for row in aligned), default=0)
    return [max(width(row[c]) for row in aligned if c < len(row)) for c in range(columns)]


def columns(stdout: Any) -> int | None:
    """The width a table must fit on ``stdout`` (a command's OutputWrapper): ``COLUMNS``
    when it is set to a whole number, else the terminal's when ``stdout`` is one; None (no
    limit) for a pipe or a file, as ``ps`` does, so that ``grep`` and ``awk`` see whole
    names (``--json`` and ``--csv`` are never cut)."""
    given = os.environ.get("COLUMNS", "")
    if given.isascii() and given.isdigit() and int(given) > 0:
        return int(given)
    try:
        if stdout.isatty():
            return os.get_terminal_size(stdout.fileno()).columns or None
    except (AttributeError, OSError, ValueError):
        pass
    return None


def cut(text: str, size: int, *, middle: bool = False) -> str:
    """``text`` in at most ``size`` columns: when longer, its start and an ellipsis; with
    ``middle``, its start, an ellipsis and its end (host names: ``rack0…node17``, where
    names differ at the end)."""
    if width(text) <= size:
        return text
    if middle:
        head = cut(text, (size + 1) // 2)[:-1]  # the start, without cut()'s ellipsis
        tail = cut(text[::-1], size - width(head))[:-1][::-1]
        return head + ELLIPSIS + tail
    kept, used = [], 0
    for char in text:
        used += char_width(char)
        if used > size - 1:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS


def fit(
    widths: Sequence[int], cuttable: Sequence[bool], limit: int | None, floors: Sequence[int]
) -> list[int]:
    """``widths`` narrowed to fit a line of ``limit`` columns (None: as they are): the
    widest ``cuttable`` column loses a column at a time, none below its floor (its
    title's width or MIN_CUT); a table that cannot fit so is as narrow as it can be."""
    fitted = list(widths)
    if limit is None:
        return fitted
    over = sum(fitted) + len(GAP) * (len(fitted) - 1) - limit
    while over > 0:
        shrinking = [
            c
            for c, size in enumerate(fitted)
            if c < len(cuttable) and cuttable[c] and size > max(floors[c], MIN_CUT)
        ]
        if not shrinking:
            break
        widest = max(shrinking, key=lambda c: fitted[c])
        fitted[widest] -= 1
        over -= 1
    return fitted


def line(
    cells: Sequence[Cell],
    widths: Sequence[int],
    left: Sequence[bool],
    middle: Sequence[bool] = (),
) -> str:
    """One line of a table: each cell but the last padded to its column's width (on the
    right when ``left``, else on the left), then styled; two spaces between cells;
    nothing after the last visible character. A cell wider than its column (one that
    :func:`fit` narrowed) is cut, but for the last cell of a row that ends early (a
    message that runs over the columns it lacks). A column marked in ``middle`` keeps the
    end of a cut cell too (:func:`cut`)."""
    last = len(cells) - 1
    shown = []
    for number, (text, style) in enumerate(cells):
        if number < len(widths) and (number < last or last == len(widths) - 1):
            text = cut(text, widths[number], middle=number < len(middle) and middle[number])
        padded = text if number == last else pad(text, widths[number], left[number])
        shown.append(style(padded) if style else padded)
    return GAP.join(shown).rstrip()


def plain(texts: Sequence[str]) -> list[Cell]:
    """Cells without a style of their own (a line styled as a whole)."""
    return [(text, None) for text in texts]


def table(
    rows: Sequence[Sequence[str]],
    titles: Sequence[str],
    left_aligned: set[str],
    *,
    limit: int | None = None,
    cuttable: Collection[str] = (),
    cut_middle: Collection[str] = (),
) -> list[str]:
    """``rows`` (the first one the titles' row, or not) as aligned lines of plain text;
    a column whose title is in ``left_aligned`` is aligned on the left. With a ``limit``
    (:func:`columns`), the columns whose titles are ``cuttable`` (names, not numbers)
    are narrowed so that a line fits it, their long cells cut (:func:`fit`): in the
    middle for the titles in ``cut_middle`` (host names), else at the end."""
    widths = fitted_widths(rows, titles, limit=limit, cuttable=cuttable)
    left = [title in left_aligned for title in titles]
    middle = [title in cut_middle for title in titles]
    return [line(plain(row), widths, left, middle) for row in rows]


def fitted_widths(
    rows: Sequence[Sequence[str]],
    titles: Sequence[str],
    *,
    limit: int | None,
    cuttable: Collection[str],
) -> list[int]:
    """:func:`column_widths` of ``rows``, narrowed by :func:`fit` to ``limit``."""
    return fit(
        column_widths(rows),
        [title in cuttable for title in titles],
        limit,
        [width(title) for title in titles],
    )


# --- marks that follow gpu_monitor.rules ----------------------------------------------


def high(style: CommandStyle, percent: float | None) -> Style | None:
    """The warning style for memory used or utilisation that ``rules`` calls high."""
    return style.WARNING if rules.is_high(percent) else None


def hot(style: CommandStyle, temperature_c: int | None) -> Style | None:
    """The warning style for a temperature that ``rules`` calls hot."""
    return style.WARNING if rules.is_hot(temperature_c) else None


# --- JSON -----------------------------------------------------------------------------


def api_json(data: Any) -> str:
    """Serializer ``data`` as the API answers it: DRF's JSONRenderer, which follows
    REST_FRAMEWORK's UNICODE_JSON, COMPACT_JSON and STRICT_JSON; one line."""
    from rest_framework.renderers import JSONRenderer  # DRF: only where it is needed

    return JSONRenderer().render(data).decode()


def dataclass_json(document: Any) -> str:
    """The bytes the API answers for the core's dataclass ``document`` (a
    ``gpu_monitor.types`` response), without importing DRF.

    On a GPU node (the core, with the history or not) nothing else in ``gpu_devices``
    imports DRF's serializers, and that import is most of the command's start-up
    (docs/command.md). The dataclasses mirror the serializers field for field and in
    order (a test holds them together, others compare this output with the API's), so
    their fields give the same document; it is dumped as :func:`api_json` dumps it.
    """
    drf = getattr(settings, "REST_FRAMEWORK", {})
    text = json.dumps(
        dataclasses.asdict(document),
        ensure_ascii=not drf.get("UNICODE_JSON", True),
        allow_nan=not drf.get("STRICT_JSON", True),
        separators=(",", ":") if drf.get("COMPACT_JSON", True) else None,
    )
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def every_page_json(results: Any) -> str:
    """A paginated list's document (``count``, ``next``, ``previous``, ``results``) with
    every item of the list ``results`` (serializer data) on one page: the bytes the API
    answers when they fit on its first."""
    return api_json({"count": len(results), "next": None, "previous": None, "results": results})
