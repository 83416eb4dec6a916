"""manage.py gpu_fleet: the table, --json byte for byte GET hosts, --watch."""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Callable
from types import ModuleType

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from gpu_monitor import terminal
from gpu_monitor.history.models import Event
from gpu_monitor.params import moment
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., object]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_fleet", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_json_is_byte_for_byte_the_body_of_get_hosts(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    fake_nvml.STATE.gpus[1].ecc_uncorrected_volatile = 4
    record("node-β")  # not ASCII: DRF writes it as it is, json.dumps would escape it
    record("node-a", epoch=NOW - 100)
    Event.objects.create(host="node-β", epoch=NOW, timestamp=moment(NOW), kind="xid", xid=79)
    clock.now = NOW + 5

    printed = run("--json")
    api = APIClient().get("/api/gpu/hosts", HTTP_ACCEPT="application/json")

    assert printed == api.content.decode() + "\n"
    document = json.loads(printed)
    assert (document["count"], document["next"], document["previous"]) == (2, None, None)
    assert [h["host"] for h in document["results"]] == ["node-a", "node-β"]
    assert document["results"][1]["xid_24h"] == 1 and document["results"][1]["problems"]


def test_json_of_more_hosts_than_a_page_holds_every_host_on_one_page(
    record: Record, clock: Clock
) -> None:
    for n in range(3):
        record(f"node-{n}")
    api = APIClient().get("/api/gpu/hosts?page_size=2").json()

    document = json.loads(run("--json"))

    assert api["next"] is not None and len(api["results"]) == 2
    assert (document["count"], document["next"], document["previous"]) == (3, None, None)
    assert document["results"][:2] == api["results"]
    assert document["results"][2]["host"] == "node-2"


def test_the_table_shows_each_host(fake_nvml: ModuleType, record: Record, clock: Clock) -> None:
    gpus = fake_nvml.STATE.gpus
    gpus[0].utilization_gpu, gpus[1].utilization_gpu, gpus[1].temperature = 10, 30, 77
    gpus[1].ecc_uncorrected_volatile = 2
    record("node-1")
    record("node-2", epoch=NOW - 900)
    clock.now = NOW + 4

    lines = run().splitlines()

    assert lines[0] == "1 up, 0 stale, 1 down"
    assert lines[1].split() == [
        "Host", "State", "Last", "seen", "GPUs", "Util", "Memory", "Hottest", "Problems"
    ]  # fmt: skip
    assert "node-1  up     4 s ago" in lines[2]
    assert "20%" in lines[2] and "77 C" in lines[2]
    assert lines[2].endswith("GPU 1: 2 uncorrected ECC error(s)")
    assert lines[3].startswith("node-2  down   15 min ago")


def test_no_host_yet_says_how_to_record() -> None:
    assert "run manage.py gpu_record on each node" in run()


def test_watch_refreshes_until_interrupted(
    record: Record, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    record("node-1")
    pauses: list[float] = []

    def pause(watch: terminal.Watch, seconds: float) -> bool:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt
        return False

    monkeypatch.setattr(terminal.Watch, "pause", pause)

    out = run("--json", "--watch", "2.5")

    lines = out.splitlines()
    assert lines[2] == ""  # the newline after ^C
    documents = [json.loads(line) for line in lines[:2]]
    assert [d["results"][0]["host"] for d in documents] == ["node-1", "node-1"]
    assert pauses == [2.5, 2.5]


def test_watch_table_outside_a_terminal_separates_frames(
    record: Record, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    record("node-1")
    pauses: list[float] = []

    def pause(watch: terminal.Watch, seconds: float) -> bool:
        pauses.append(seconds)
        return len(pauses) == 2  # stopped during the second wait

    monkeypatch.setattr(terminal.Watch, "pause", pause)

    out = run("--watch", "1")

    assert out.count("\n1 up, 0 stale, 0 down\n") == 2
    assert out.startswith("\n") and "\x1b" not in out


def test_a_bad_watch_is_a_usage_error() -> None:
    with pytest.raises(CommandError, match="argument --watch"):
        call_command("gpu_fleet", "--watch", "0", stdout=io.StringIO())


def columns(text: str) -> int:
    """Terminal columns of ``text`` (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_a_wide_host_name_keeps_the_columns_aligned(record: Record, clock: Clock) -> None:
    record("計算-1")  # two wide characters: six columns
    record("node-long")
    clock.now = NOW + 4

    lines = run().splitlines()[1:]

    assert [columns(line[: line.index("up")]) for line in lines[1:]] == [11, 11]
    assert columns(lines[0][: lines[0].index("State")]) == 11


def test_a_255_character_host_is_cut_to_the_terminal_and_whole_in_a_pipe(
    record: Record, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_host = "node-" + "x" * 250  # the longest a host name can be
    record(long_host)
    clock.now = NOW + 4
    monkeypatch.setenv("COLUMNS", "100")

    lines = run().splitlines()

    assert max(map(terminal.width, lines)) <= 100
    assert lines[2].startswith("node-xxx") and terminal.ELLIPSIS in lines[2]
    assert "4 s ago" in lines[2]  # only the name is cut
    monkeypatch.delenv("COLUMNS")
    assert long_host in run()  # not a terminal, no COLUMNS: nothing is cut


def test_at_80_columns_host_names_are_cut_in_the_middle(
    fake_nvml: ModuleType, record: Record, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.STATE.gpus[1].ecc_uncorrected_volatile = 2
    record("node-cmd-nofake")
    record("node-cmd-fake")
    clock.now = NOW + 4
    monkeypatch.setenv("COLUMNS", "80")

    lines = run().splitlines()

    assert max(map(terminal.width, lines)) <= 80
    # Cut in the middle: two names that share their start stay apart.
    assert [line.split()[0] for line in lines[2:]] == ["node-…-fake", "node-…ofake"]
    assert lines[2].endswith(terminal.ELLIPSIS)  # "GPU 1: 2 uncorrected ECC error(s)", cut
