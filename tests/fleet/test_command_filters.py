"""manage.py gpu_fleet's filters (--state, --problem, -q) and --sort: GET hosts'
parameters, the same choices and the same code path; control characters escaped."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command, load_command_class
from rest_framework.test import APIClient

from gpu_monitor.fleet.limits import PROBLEM_VALUES, SORTS
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.types import STATES
from gpu_monitor.params import moment
from tests.fleet.conftest import NOW, Clock, seed_host_states

pytestmark = pytest.mark.django_db


FLEET = {
    "gpu-b": (0, False),
    "gpu-a": (100, False),  # stale
    "cpu-c": (1000, False),  # down
    "GPU-D": (0, True),
}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_fleet", *args, stdout=out, no_color=True)
    return out.getvalue()


def listed(*args: str) -> list[str]:
    return [h["host"] for h in json.loads(run("--json", *args))["results"]]


@pytest.mark.parametrize(
    ("args", "query"),
    [
        ((), ""),
        (("--state", "up"), "state=up"),
        (("--state", "stale"), "state=stale"),
        (("--state", "down"), "state=down"),
        (("--problem", "1"), "problem=1"),
        (("--problem", "0"), "problem=0"),
        (("-q", "gpu-"), "q=gpu-"),
        (("-q", "gpu", "--state", "up", "--problem", "0"), "q=gpu&state=up&problem=0"),
        (("-q", "nothing"), "q=nothing"),
        (("--sort", "problems"), "sort=problems"),
        (("--sort", "last_seen", "--state", "up"), "sort=last_seen&state=up"),
    ],
)
def test_filters_and_sort_are_get_hosts_byte_for_byte(
    clock: Clock, args: tuple[str, ...], query: str
) -> None:
    seed_host_states(FLEET)

    api = APIClient().get(f"/api/gpu/hosts?{query}", HTTP_ACCEPT="application/json")

    assert run("--json", *args) == api.content.decode() + "\n"


def test_the_table_is_filtered_and_sorted(clock: Clock) -> None:
    seed_host_states(FLEET)

    table = run("--sort", "problems", "--state", "down")
    lines = table.splitlines()
    assert lines[0] == "0 up, 0 stale, 1 down"
    assert [line.split()[0] for line in lines[2:]] == ["cpu-c"]
    assert [line.split()[0] for line in run("--sort", "problems").splitlines()[2:]] == [
        "cpu-c",
        "GPU-D",
        "gpu-a",
        "gpu-b",
    ]
    assert run("-q", "nothing") == "No host matches these filters.\n"


def test_the_choices_are_the_apis() -> None:
    parser = load_command_class("gpu_monitor.fleet", "gpu_fleet").create_parser(
        "manage.py", "gpu_fleet"
    )
    choices = {a.dest: a.choices for a in parser._actions if a.choices}

    assert choices["state"] == STATES
    assert list(choices["problem"]) == [value for value in PROBLEM_VALUES if value]
    assert list(choices["sort"]) == list(SORTS)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--state", "sleeping"), "argument --state: invalid choice: 'sleeping'"),
        (("--problem", "yes"), "argument --problem: invalid choice: 'yes'"),
        (("--sort", "name"), "argument --sort: invalid choice: 'name'"),
        (("-q", "x" * 256), "argument -q: q: longer than 255 characters"),
        (("-q", "a\x00b"), "argument -q: q: contains a NUL character"),
    ],
)
def test_a_bad_value_exits_2_with_argparses_message(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    command = load_command_class("gpu_monitor.fleet", "gpu_fleet")
    command._called_from_command_line = True  # as manage.py runs it: argparse exits
    parser = command.create_parser("manage.py", "gpu_fleet")

    with pytest.raises(SystemExit) as exited:
        parser.parse_args(list(args))

    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_control_characters_in_names_and_problems_are_escaped(clock: Clock) -> None:
    HostState.objects.create(
        host="evil\x1b[31m\nnode",
        epoch=NOW,
        timestamp=moment(NOW),
        interval_seconds=10,
        devices=[],
        problems=[{"gpu_index": 0, "kind": "x", "message": "bad\rline"}],
        problem_count=1,
    )

    table = run()

    assert "\x1b" not in table and "\r" not in table
    assert "evil\\x1b[31m\\nnode" in table
    assert "GPU 0: bad\\rline" in table
    assert len(table.splitlines()) == 3  # the counts, the heading, one host
