"""gpu_usage in a terminal: its table fits the terminal's width (a long host or user name
is cut with an ellipsis; --json and --csv never), NO_COLOR, and the help and errors of
--by and --since read as they should."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from gpu_monitor import terminal
from gpu_monitor.params import parse_time
from gpu_monitor.usage.management.commands import gpu_usage
from gpu_monitor.usage.types import BY
from tests.usage.test_command import NOW, WINDOW, hold, used

pytestmark = pytest.mark.django_db
LONG_HOST = "node-" + "x" * 250  # 255 characters, the longest a host can be


def run(*args: str, **options: object) -> str:
    out = io.StringIO()
    call_command("gpu_usage", *args, stdout=out, **options)
    return out.getvalue()


def test_a_255_character_host_does_not_make_a_line_wider_than_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    used("alice", host=LONG_HOST)
    monkeypatch.setenv("COLUMNS", "120")

    lines = run(*WINDOW, "--by", "host,user", no_color=True).splitlines()

    assert max(map(terminal.width, lines)) <= 120
    row = next(line for line in lines if line.startswith("node-"))
    assert row.startswith(f"node-xxx{terminal.ELLIPSIS}xxx") and "alice" in row  # cut mid-name
    assert "0.08" in row  # the figures are whole: only the name is cut


def test_idle_table_cuts_names_too(monkeypatch: pytest.MonkeyPatch) -> None:
    hold("u" * 200, 90, host=LONG_HOST)
    monkeypatch.setenv("COLUMNS", "100")

    lines = run("--idle", no_color=True).splitlines()

    assert len(lines) == 3
    assert max(map(terminal.width, lines)) <= 100


def test_without_a_terminal_or_columns_nothing_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    used("alice", host=LONG_HOST)
    monkeypatch.delenv("COLUMNS", raising=False)

    printed = run(*WINDOW, "--by", "host", no_color=True)

    assert LONG_HOST in printed and terminal.ELLIPSIS not in printed


def test_json_and_csv_are_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    used("alice", host=LONG_HOST)
    monkeypatch.setenv("COLUMNS", "40")

    as_json = json.loads(run(*WINDOW, "--by", "host", "--json"))
    as_csv = run(*WINDOW, "--by", "host", "--csv")

    assert as_json["rows"][0]["host"] == LONG_HOST
    assert LONG_HOST in as_csv


@pytest.mark.parametrize(("value", "colored"), [("1", False), ("", True)])
def test_no_color_set_and_not_empty_means_no_escape_codes(
    value: str, colored: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    used("alice", period=NOW)
    monkeypatch.setenv("NO_COLOR", value)
    # A terminal (supports_color) without NO_COLOR would be coloured: force_color stands
    # in for it, and NO_COLOR must still win over the terminal but not over the option.
    monkeypatch.setattr("django.core.management.color.supports_color", lambda: True)

    printed = run(*WINDOW)

    assert ("\x1b[" in printed) is colored


def test_force_color_wins_over_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    used("alice", period=NOW)
    monkeypatch.setenv("NO_COLOR", "1")

    assert "\x1b[" in run(*WINDOW, force_color=True)


def test_by_help_names_each_choice_once() -> None:
    parser = gpu_usage.Command().create_parser("manage.py", "gpu_usage")
    text = parser.format_help()

    assert "{user,host,gpu,host,user}" not in text
    usage = text.split("\n\n")[0]
    assert "--by BY" in usage
    by_help = " ".join(re.search(r"--by BY\s+(.*?)\n  --", text, re.S)[1].split())  # type: ignore[index]
    assert by_help == (
        "One row per user, host, gpu or host,user (one per host and user pair) (default: user)."
    )
    assert all(by_help.count(choice) >= 1 for choice in BY)


def test_a_time_before_1971_names_the_years_accepted() -> None:
    with pytest.raises(CommandError, match="an ISO 8601 time of the years 1971 to 9998 or"):
        run("--since", "1970-01-01")


def test_the_years_named_are_those_the_grammar_accepts() -> None:
    first, last = (int(year) for year in gpu_usage.YEARS.split(" to "))

    for year in (first, last):
        parse_time("since", f"{year}-01-01", 0, 0)
    for year in (first - 1, last + 1):
        with pytest.raises(Exception, match="not an ISO 8601 time"):
            parse_time("since", f"{year}-01-01", 0, 0)
