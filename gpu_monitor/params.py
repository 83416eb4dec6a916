"""One grammar for user input: GPU indexes and UUIDs, whole numbers, times, durations,
quoting input back."""

from __future__ import annotations

import argparse
import calendar
import datetime
import re
from typing import Any

from rest_framework.exceptions import NotFound, ParseError

# A GPU as a user names it: an index, or a UUID (the GPU's, or one of its MIG devices').
_UUID = "(GPU|MIG)-[0-9A-Za-z-]{1,80}"
UUID_PATTERN = re.compile(_UUID)
GPU_PATTERN = f"^([0-9]+|{_UUID})$"  # as the OpenAPI schema publishes it
OPTIONAL_GPU_PATTERN = f"^([0-9]+|{_UUID})?$"  # a query parameter: empty is every GPU

TOO_LARGE = 10**9  # past any index or interval; int() of 4301+ digits would raise


def whole_number(text: str) -> int | None:
    """A non-negative decimal number of any length from user input, capped at
    ``TOO_LARGE``; None when ``text`` is not one."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) < len(str(TOO_LARGE)) else TOO_LARGE


def shown(text: str, limit: int = 40) -> str:
    """User input as quoted in an error message: repr, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}..."


def gpu_key(key: str) -> int | str:
    """A GPU as named in a URL: an index (int) or a UUID (str); raises NotFound (404)."""
    index = whole_number(key)
    if index == TOO_LARGE:
        raise NotFound(f"No GPU with index {shown(key)}.")
    if index is not None:
        return index
    if UUID_PATTERN.fullmatch(key):
        return key
    raise NotFound(f"No GPU {shown(key)}: use an index (0, 1, ...) or a UUID (GPU-..., MIG-...).")


# -- times --------------------------------------------------------------------------
# The grammar of a time in a query (``since``, ``until``), as one regular expression that
# the views match and the OpenAPI schema publishes: plain groups, classes and
# quantifiers only, which JSON Schema (ECMA 262) and Python read alike.
#
# Seconds per unit of a duration or a relative time (7d, -1h).
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A relative time has at most as many digits as keep it after 1970 (999999999s and
# 999w are 31 and 19 years): a time the grammar accepts is never out of range.
RELATIVE_TIME = "-([0-9]{1,9}s|[0-9]{1,7}m|[0-9]{1,5}h|[0-9]{1,4}d|[0-9]{1,3}w)"
# Calendar dates of the years 1971 to 9998 (an offset of up to 23:59 keeps any of them
# within 1970 .. 9999), February 29 in leap years only.
_YEAR = "(197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_MONTH_DAY = (
    "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    "|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|02-(0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_YEAR = (
    "(19(7[26]|8[048]|9[26])|[2-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[3579][26])00)"
)
_DATE = f"({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_CLOCK = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,9})?)?"
_OFFSET = "(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
ISO_TIME = f"{_DATE}([T ]{_CLOCK}{_OFFSET}?)?"
# Empty is the default (a form's empty field).
TIME_PATTERN = f"^(now|{RELATIVE_TIME}|{ISO_TIME})?$"
YEARS = "1971 to 9998"  # the years of _YEAR, as the messages name them
TIME_HELP = (
    f"ISO 8601 (2026-11-28T08:00:00Z; UTC without an offset; years {YEARS}), 'now', "
    "or relative to now: -90s, -30m, -1h, -7d, -2w"
)
_TIME = re.compile(TIME_PATTERN)


def parse_time(name: str, text: str | None, now: int, default: int) -> int:
    """``text`` (the query parameter ``name``) as Unix seconds, by ``TIME_PATTERN``:
    ``default`` when absent or empty; raises ParseError (400) naming ``name`` otherwise."""
    if not text:
        return default
    if not _TIME.fullmatch(text):
        raise ParseError(
            f"{name}: not an ISO 8601 time of the years {YEARS}, 'now' or a relative time "
            f"like -1h (at most 999999999s, 999w): {shown(text)}"
        )
    if text == "now":
        return now
    if text.startswith("-"):
        return now - int(text[1:-1]) * SECONDS_PER_UNIT[text[-1]]
    # The grammar fixes every field's place: YYYY-MM-DD[Thh:mm[:ss[.f]][offset]].
    fields = [int(text[0:4]), int(text[5:7]), int(text[8:10]), 0, 0, 0]
    rest = text[10:]
    if rest:
        fields[3:5] = int(rest[1:3]), int(rest[4:6])
        rest = rest[6:]
        if rest.startswith(":"):
            fields[5], rest = int(rest[1:3]), rest[3:].lstrip(".0123456789")
    offset = 0
    if rest not in ("", "Z"):
        digits = rest[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:] or 0) * 60
        offset = -offset if rest[0] == "-" else offset
    return calendar.timegm(tuple(fields)) - offset


def name_text(name: str, text: str, limit: int) -> str:
    """A host or user name from the query parameter ``name``: at most ``limit``
    characters and no NUL (no name has one, and PostgreSQL text cannot hold it), else a
    400 naming the parameter."""
    if len(text) > limit:
        raise ParseError(f"{name}: longer than {limit} characters: {shown(text)}")
    if "\x00" in text:
        raise ParseError(f"{name}: contains a NUL character: {shown(text)}")
    return text


def parse_window(query: Any, now: int, default_span: int) -> tuple[int, int]:
    """``?since=&until=`` of a query (a QueryDict) as Unix seconds: ``until`` default
    ``now``, ``since`` default ``until - default_span``; a 400 naming ``since`` unless it
    is before ``until`` (a relation no OpenAPI schema can state)."""
    until = parse_time("until", query.get("until"), now, now)
    since = parse_time("since", query.get("since"), now, until - default_span)
    if since >= until:
        raise ParseError(f"since: must be before until ({iso(since)} >= {iso(until)})")
    return since, until


def moment(epoch: float) -> datetime.datetime:
    """Unix seconds as an aware datetime in UTC: what a ``DateTimeField`` stores."""
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


def iso(epoch: float) -> str:
    """Unix seconds as ISO 8601 in UTC with a Z, to the second (a fraction is dropped):
    every time the API, the pages and the commands write."""
    return moment(epoch).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- durations (command-line options) ---------------------------------------------------
MAX_RETENTION = ("3650d", 3650 * 86400)  # ten years: the longest retention a command takes
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*")


def duration(text: str, maximum: tuple[str, int] = MAX_RETENTION) -> int:
    """An option's ``7d``, ``12h``, ``30m``, ``90s`` or plain seconds, as whole seconds (at
    least 1, at most ``maximum``: its text and its seconds); raises
    argparse.ArgumentTypeError, which argparse reports under the option's name."""
    match = _DURATION.fullmatch(text)
    if not match or not match.group(1).strip("0"):
        raise argparse.ArgumentTypeError(
            f"a duration is a positive whole number with s, m, h, d or w (7d, 12h), not {text!r}"
        )
    digits = match.group(1).lstrip("0")
    seconds = int(digits[:20]) * SECONDS_PER_UNIT[match.group(2) or "s"]
    if len(digits) > 20 or seconds > maximum[1]:
        quoted = text.strip() if len(text) <= 40 else f"{text.strip()[:20]}..."
        raise argparse.ArgumentTypeError(
            f"{quoted!r} is too large: the maximum is {maximum[0]} ({maximum[1]} s)"
        )
    return seconds


def retention(text: str) -> int | None:
    """A retention option: a duration as ``duration`` reads it, or ``off`` (None): never
    delete."""
    if text.strip().lower() == "off":
        return None
    return duration(text)
