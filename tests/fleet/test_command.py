"""manage.py gpu_fleet: the table, --json identical to GET hosts, --watch."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from types import ModuleType

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from gpu_monitor.history.models import Event
from gpu_monitor.history.recorder import Recorder, moment
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("gpu_fleet", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_json_is_the_results_of_get_hosts(
    fake_nvml: ModuleType, record: Record, clock: Clock
) -> None:
    fake_nvml.STATE.gpus[1].ecc_uncorrected_volatile = 4
    record("node-b")
    record("node-a", epoch=NOW - 100)
    Event.objects.create(host="node-b", epoch=NOW, timestamp=moment(NOW), kind="xid", xid=79)
    clock.now = NOW + 5

    printed = json.loads(run("--json"))
    api = APIClient().get("/api/gpu/hosts").json()["results"]

    assert printed == api
    assert [h["host"] for h in printed] == ["node-a", "node-b"]
    assert printed[1]["xid_24h"] == 1 and printed[1]["problems"]


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
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", sleep)

    out = run("--json", "--watch", "2.5")

    documents = [json.loads(line) for line in out.splitlines() if line]
    assert len(documents) == 2 and documents[0][0]["host"] == "node-1"
    assert sleeps == [2.5, 2.5]


def test_a_bad_watch_is_a_usage_error() -> None:
    with pytest.raises(CommandError, match="argument --watch"):
        call_command("gpu_fleet", "--watch", "0", stdout=io.StringIO())
