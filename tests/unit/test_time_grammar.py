"""The one grammar of times in a query (gpu_monitor.params.TIME_PATTERN): what it
accepts is exactly a real calendar time within range, and parse_time reads it right."""

from __future__ import annotations

import calendar
import datetime
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError

from gpu_monitor.params import TIME_PATTERN, parse_time

NOW = 1_795_824_000
LAST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z
ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?"
    r"(?:Z|([+-])(\d\d):?(\d\d)?)?)?"
)


def accepted(text: str) -> bool:
    return re.fullmatch(TIME_PATTERN, text) is not None


def test_february_29_only_in_leap_years() -> None:
    years = range(1971, 9999)

    assert [y for y in years if accepted(f"{y}-02-29")] == [y for y in years if calendar.isleap(y)]
    assert all(accepted(f"{y}-02-28") and accepted(f"{y}-12-31") for y in years)
    assert not accepted("1970-06-01") and not accepted("9999-01-01")


@pytest.mark.parametrize("year", [1971, 2000, 2024, 2026, 2100])
def test_every_day_of_a_year_and_no_other(year: int) -> None:
    real = set()
    day = datetime.date(year, 1, 1)
    while day.year == year:
        real.add(day.isoformat())
        day += datetime.timedelta(days=1)
    candidates = {f"{year}-{m:02}-{d:02}" for m in range(0, 14) for d in range(0, 33)}

    assert {text for text in candidates if accepted(text)} == real


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-90s", NOW - 90),
        ("-30m", NOW - 1800),
        ("-1h", NOW - 3600),
        ("-7d", NOW - 7 * 86400),
        ("-2w", NOW - 14 * 86400),
        ("2026-11-28", 1_795_824_000),
        ("2026-11-28T00:00:00Z", 1_795_824_000),
        ("2026-11-28 01:30", 1_795_824_000 + 5400),
        ("2026-11-28T01:00:00+01:00", 1_795_824_000),
        ("2026-11-27T19:30:00.999-0430", 1_795_824_000),
        ("2026-11-28T05:30+05", 1_795_824_000 + 1800),
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time("since", text, NOW, 0) == expected


@pytest.mark.parametrize(
    "text",
    ["-1y", "1h", "-9999999999s", "-1000w", "2026-02-29", "2026-11-28T24:00",
     "2026-11-28T00:00+24:00", "2026-11-28T00:00:60", "20261128T000000",
     "2026-11-28T00:00:00 ", "now\n", "yesterday"],
)  # fmt: skip
def test_anything_else_is_a_400_naming_the_parameter(text: str) -> None:
    with pytest.raises(ParseError, match=r"^until: "):
        parse_time("until", text, NOW, 0)


def test_absent_or_empty_is_the_default() -> None:
    assert parse_time("since", None, NOW, 7) == parse_time("since", "", NOW, 7) == 7


# fullmatch: Python's "$" also matches before a final newline, ECMA 262's does not.
@given(st.from_regex(TIME_PATTERN, fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_every_accepted_time_is_in_range_and_agrees_with_datetime(text: str) -> None:
    epoch = parse_time("since", text, NOW, NOW)

    assert 0 <= epoch <= LAST_EPOCH
    match = ISO.fullmatch(text)
    if match is not None:  # not a relative time: datetime says when it is
        year, month, day, hour, minute, second, sign, oh, om = match.groups()
        offset = datetime.timedelta(hours=int(oh or 0), minutes=int(om or 0))
        zone = datetime.timezone(-offset if sign == "-" else offset)
        numbers = (int(n or 0) for n in (year, month, day, hour, minute, second))
        assert epoch == int(datetime.datetime(*numbers, tzinfo=zone).timestamp())


@pytest.mark.parametrize("text", ["1970-01-01", "9999-01-01", "2026-13-01", "-1000000000s"])
def test_a_time_out_of_range_is_refused_naming_the_range_it_takes(text: str) -> None:
    with pytest.raises(ParseError) as refused:
        parse_time("since", text, 0, 0)

    assert "of the years 1971 to 9998" in str(refused.value.detail)
    assert "at most 999999999s" in str(refused.value.detail)
