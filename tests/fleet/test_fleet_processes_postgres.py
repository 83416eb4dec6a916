"""The fleet with real ``gpu_record`` processes on the test run's PostgreSQL.

Three nodes (``manage.py gpu_record --host procs-<x> --interval 1 --retention off``, fake
NVML with 1, 2 and 3 GPUs, one GPU lost, one XID) write to the same database as this
process, which answers as the central site: each node appears, a node killed with
SIGKILL goes stale then down, a node whose connections are cut writes its buffered ticks
when it can log in again, and the central views answer from the database with no NVML
at all. Each node logs in as a role of its own with the grants docs/deployment.md gives
a node (no DELETE, no DDL), so that one node's connections can be cut (``ALTER ROLE ...
NOLOGIN`` and ``pg_terminate_backend``) while the others write on.

Marked ``postgres``: run in scripts/test's PostgreSQL pass (``--ds
tests.settings_postgres``), deselected on SQLite.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from gpu_monitor import host as host_details
from gpu_monitor import manager as manager_module
from gpu_monitor.fleet import hosts
from gpu_monitor.history.models import Event, Sample
from tests.history.test_partitions_postgres import ROLE as DOCUMENTED_ROLE
from tests.history.test_partitions_postgres import documented_grants

# Each test in a transaction of its own (rolled back), which reads what the nodes commit
# (READ COMMITTED); roles and cuts are executed at once on a connection of their own.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "procs-"  # every host these tests record; their rows are deleted afterwards
NODES = {"procs-a": 1, "procs-b": 2, "procs-c": 3}  # host: GPUs of its fake NVML
LOST = "procs-b"  # its last GPU is lost (a gpu_lost event, no samples of that GPU)
XID = "procs-a"  # NVML reports one XID error (13) on its GPU 0
GPU_MEMORY_MB = 81559  # an H100 of the fake's capture
DOWN_AFTER = 6  # FLEET_DOWN_AFTER in test_a_killed_node_goes_stale_then_down
NODE_OPTIONS = ("--interval", "1", "--retention", "off")  # retention: gpu_history_maintain's
CUT_S = 3.5  # how long test_a_cut_node_writes_every_tick_when_it_is_back cuts a node


def execute(sql: str, params: tuple[Any, ...] | None = None) -> None:
    """``sql`` at once, outside the test's transaction, as the cluster's superuser."""
    import psycopg  # the dev extra's (scripts/test); the tox cells have no PostgreSQL

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user="postgres",
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute(sql, params)


@dataclass
class Node:
    """One ``gpu_record`` process, logging to ``log``."""

    host: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def role(self) -> str:
        return role_of(self.host)

    def logged(self) -> str:
        return self.log.read_text()

    def epochs(self) -> list[int]:
        """The ticks of this node in the database, in order."""
        rows = Sample.objects.filter(host=self.host).order_by("epoch")
        return list(rows.values_list("epoch", flat=True).distinct())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def role_of(host: str) -> str:
    return host.replace("-", "_")


def start(host: str, gpus: int, directory: Path, **environ: str) -> Node:
    """``gpu_record --host host --interval 1 --retention off`` under a role of its own
    with the grants docs/deployment.md gives a node's role (no DELETE, no DDL)."""
    execute(f"CREATE ROLE {role_of(host)} LOGIN")
    execute(documented_grants().replace(DOCUMENTED_ROLE, role_of(host)))
    settings = connection.settings_dict
    database = [settings["HOST"], str(settings["PORT"]), settings["NAME"], role_of(host)]
    log = directory / f"{host}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "gpu_record", "--host", host, *NODE_OPTIONS],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
                "DJANGO_SETTINGS_MODULE": "tests.fleet.procs_settings",
                "PROCS_DB": ":".join(database),
                "FAKE_NVML_GPUS": str(gpus),
                **environ,
            },
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return Node(host, process, log)


def forget(nodes: list[Node]) -> None:
    """Stop the nodes and drop their roles."""
    for node in nodes:
        node.stop()
        execute(f"DROP OWNED BY {node.role}")  # its grants
        execute(f"DROP ROLE {node.role}")


def delete_rows(hosts: str = f"{PREFIX}%") -> None:
    """Delete every row the nodes wrote whose host is LIKE ``hosts``, from the table of
    any installed model with a host column (at once: outside the test's transaction)."""
    for model in apps.get_models():
        if any(field.name == "host" for field in model._meta.get_fields()):
            table = connection.ops.quote_name(model._meta.db_table)
            execute(f"DELETE FROM {table} WHERE host LIKE %s", (hosts,))


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def get(path: str) -> dict[str, Any]:
    response = APIClient().get(f"/api/gpu/{path}")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def listed(query: str = "") -> dict[str, dict[str, Any]]:
    """``GET hosts?q=procs-`` (and ``query``), by host."""
    return {row["host"]: row for row in get(f"hosts?q={PREFIX}{query}")["results"]}


@pytest.fixture(scope="module")
def nodes(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Node]]:
    """The three nodes, each with two ticks written (so that a history ending now holds
    one: its end is exclusive); stopped and forgotten afterwards."""
    directory = tmp_path_factory.mktemp("fleet-nodes")
    with django_db_blocker.unblock():
        started: list[Node] = []
        try:
            xid = directory / "xid.json"
            xid.write_text(json.dumps({"xid": [[0, 13]]}))
            for host, gpus in NODES.items():
                scenario = "lost" if host == LOST else "healthy"
                fake = {"FAKE_NVML_SCENARIO": scenario}
                if host == XID:
                    fake["FAKE_NVML_STATE_FILE"] = str(xid)
                started.append(start(host, gpus, directory, **fake))
            for node in started:
                wait_for(lambda node=node: len(node.epochs()) >= 2)  # type: ignore[misc]
            # An XID waits for the tick after the listener's first wait.
            wait_for(lambda: Event.objects.filter(host=XID, kind=Event.Kind.XID).exists())
            yield {node.host: node for node in started}
        finally:
            forget(started)
            delete_rows()
    # SIGTERM: each node wrote what it had and exited 0, with no traceback.
    assert [node.process.returncode for node in started] == [0] * len(started)
    assert not [node.host for node in started if "Traceback" in node.logged()]


def test_three_nodes_appear_up_with_their_gpu_counts(nodes: dict[str, Node]) -> None:
    found = listed()

    assert {host: row["state"] for host, row in found.items()} == dict.fromkeys(NODES, "up")
    assert {host: row["gpu_count"] for host, row in found.items()} == NODES
    assert {row["interval_seconds"] for row in found.values()} == {1}
    assert all(row["age_seconds"] <= 3 for row in found.values())
    answering = {host: gpus - (host == LOST) for host, gpus in NODES.items()}
    assert {host: row["total_memory_mb"] for host, row in found.items()} == {
        host: gpus * GPU_MEMORY_MB for host, gpus in answering.items()
    }
    assert {host: row["xid_24h"] for host, row in found.items()} == {
        host: int(host == XID) for host in NODES
    }


def test_a_killed_node_goes_stale_then_down(
    nodes: dict[str, Node],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL: nothing says goodbye. The state comes from the age of the last tick at
    read time: "stale" after 3 missed intervals, "down" after FLEET_DOWN_AFTER."""
    killed = start(f"{PREFIX}killed", 1, tmp_path)
    try:
        wait_for(lambda: len(killed.epochs()) >= 1)
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(10)
        seen: list[tuple[int, str, str]] = []  # age, state, last_seen of each look
        with override_settings(GPU_MONITOR={"FLEET_DOWN_AFTER": DOWN_AFTER}):
            deadline = time.monotonic() + DOWN_AFTER + 4  # the last tick is before the kill
            while not seen or seen[-1][1] != "down":
                assert time.monotonic() < deadline, seen
                at = int(time.time())  # one "now" for the three requests of a look
                monkeypatch.setattr(hosts, "now", lambda at=at: at)
                found = listed()
                row = found.pop(killed.host)
                seen.append((row["age_seconds"], row["state"], row["last_seen"]))
                assert get(f"hosts/{killed.host}")["state"] == row["state"]
                filtered = listed(f"&state={row['state']}")
                assert killed.host in filtered
                assert {r["state"] for r in found.values()} == {"up"}  # the others tick on
                others = set(found) if row["state"] == "up" else set()
                assert set(filtered) == {killed.host} | others
                time.sleep(0.2)
    finally:
        forget([killed])
        delete_rows(killed.host)

    assert len({last_seen for _, _, last_seen in seen}) == 1  # no tick after the kill
    for age, state, _ in seen:
        expected = "up" if age <= 3 else "stale" if age < DOWN_AFTER else "down"
        assert state == expected, seen
    states = [state for _, state, _ in seen]
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]] == [
        "up",
        "stale",
        "down",
    ]


def test_a_cut_node_writes_every_tick_when_it_is_back(nodes: dict[str, Node]) -> None:
    """Its role may not log in and its connection is terminated for CUT_S seconds: the
    ticks wait in its buffer and are all written once it can log in again."""
    node = nodes["procs-c"]
    execute(f"ALTER ROLE {node.role} NOLOGIN")
    try:
        cut = time.monotonic()
        execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (node.role,),
        )
        wait_for(lambda: "Database unreachable" in node.logged(), 5)
        time.sleep(max(0.0, cut + CUT_S - time.monotonic()))
        during = listed()
    finally:
        execute(f"ALTER ROLE {node.role} LOGIN")
    wait_for(lambda: "Database reachable again" in node.logged())
    wait_for(lambda: node.epochs()[-1] >= int(time.time()) - 1)

    assert during.pop(node.host)["age_seconds"] >= 2  # the cut was real: no tick arrived
    assert {row["state"] for row in during.values()} == {"up"}  # the others' did
    epochs = node.epochs()
    assert epochs == list(range(epochs[0], epochs[-1] + 1))  # no tick missing
    back = re.search(r"Database reachable again: (\d+) buffered", node.logged())
    assert back is not None
    assert int(back[1]) >= 3
    assert not Event.objects.filter(host=node.host, kind=Event.Kind.SAMPLES_DROPPED).exists()
    assert listed()[node.host]["state"] == "up"


def test_the_central_views_need_no_nvml(
    nodes: dict[str, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pynvml cannot even be imported here: everything comes from the database."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml: ImportError
    monkeypatch.setattr(manager_module, "_manager", None)
    monkeypatch.setattr("gpu_monitor.manager.atexit.register", lambda func: func)
    host_details.forget()
    assert manager_module.get_manager().error_message is not None  # no NVML in this process

    assert get("devices") == {"devices": [], "count": 0}  # its own GPUs: none

    assert set(listed()) == set(NODES)
    for host, gpus in NODES.items():
        sampled = gpus - 1 if host == LOST else gpus
        detail = get(f"hosts/{host}")
        assert detail["count"] == gpus
        assert sum(device["is_available"] for device in detail["devices"]) == sampled
        series = get(f"history?host={host}&since=-1m")["series"]
        assert [s["gpu_index"] for s in series] == list(range(sampled))
        assert all(any(u is not None for u in s["total_memory_mb"]) for s in series)
    (event,) = get(f"events?host={LOST}")["results"]
    assert (event["kind"], event["gpu_index"]) == ("gpu_lost", 1)
    fleet = [e for e in get("events")["results"] if e["host"].startswith(PREFIX)]
    assert sorted((e["host"], e["kind"], e["xid"]) for e in fleet) == [
        (XID, "xid", 13),  # without ?host=: every host's
        (LOST, "gpu_lost", None),
    ]
    assert event in fleet
    assert [e["timestamp"] for e in fleet] == sorted((e["timestamp"] for e in fleet), reverse=True)
