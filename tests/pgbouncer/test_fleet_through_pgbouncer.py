"""A fleet through PgBouncer in transaction mode (marked ``postgres``): 20 real
``gpu_record`` processes (fake NVML, each its own ``--host``, a tick every 2 s) and the
central site's views share a pool of 5 server connections. Every tick is written and
none late, no "prepared statement" error anywhere, and no ``SET`` is left on the server
connections that the next client gets."""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from gpu_monitor.history.models import Sample
from tests.history.test_recorder_process import ROOT, env
from tests.pgbouncer.conftest import (
    POOL_SIZE,
    Bouncer,
    server_connections,
    server_defaults,
    through,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NODES = 20
INTERVAL = 2  # seconds
MEASURED_TICKS = 4  # ticks of every node after all of them are up
STARTED_WITHIN_S = 120.0  # 20 Django processes starting on a loaded 2-core machine
PREFIX = "pgb-"


def node_options(n: int) -> list[str]:
    return ["--host", f"{PREFIX}{n:02d}", "--interval", str(INTERVAL), "--retention", "off"]


class Fleet:
    """NODES ``gpu_record`` processes through pgbouncer, each logging to a file."""

    def __init__(self, bouncer: Bouncer, directory: Path) -> None:
        database = f"postgres:{bouncer.directory}:{bouncer.port}:{connection.settings_dict['NAME']}"
        self.logs = [directory / f"{PREFIX}{n:02d}.log" for n in range(NODES)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for n, log in enumerate(self.logs):
            with log.open("wb") as stderr:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "gpu_record", *node_options(n)],
                        cwd=ROOT,
                        env=env(database),
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )
                )

    def stop(self) -> list[int | None]:
        """SIGTERM every node; their exit statuses."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return [process.returncode for process in self.processes]

    def said(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)


@pytest.fixture
def fleet(bouncer: Bouncer, tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(bouncer, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def first_seen(seen: dict[tuple[str, int], float]) -> None:
    """Note when each (host, epoch) is first read, through this process's connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT host, epoch FROM gpu_monitor_history_sample WHERE host LIKE %s",
            [f"{PREFIX}%"],
        )
        rows = cursor.fetchall()
    now = time.time()
    for host, epoch in rows:
        seen.setdefault((host, epoch), now)


def the_site_answers(client: APIClient, hosts: set[str]) -> None:
    """The central site's views, through pgbouncer while the nodes write."""
    listed = client.get("/api/gpu/hosts", {"q": PREFIX})
    assert listed.status_code == 200, listed.content
    assert listed.json()["count"] >= len(hosts)
    if hosts:
        one = client.get(f"/api/gpu/hosts/{min(hosts)}")
        assert one.status_code == 200, one.content
        history = client.get("/api/gpu/history", {"host": min(hosts)})
        assert history.status_code == 200, history.content


def test_twenty_recorders_and_the_site_share_five_server_connections(
    bouncer: Bouncer, fleet: Fleet
) -> None:
    dbname = connection.settings_dict["NAME"]
    logged_from = bouncer.log_size()
    seen: dict[tuple[str, int], float] = {}
    client = APIClient()
    with through(bouncer):
        deadline = time.monotonic() + STARTED_WITHIN_S
        measured_from: int | None = None
        while True:
            first_seen(seen)
            hosts = {host for host, _ in seen}
            the_site_answers(client, hosts)
            if measured_from is None and len(hosts) == NODES:
                measured_from = (int(time.time()) // INTERVAL + 1) * INTERVAL
                deadline = time.monotonic() + (MEASURED_TICKS + 3) * INTERVAL + 30
            if measured_from is not None:
                last = measured_from + (MEASURED_TICKS - 1) * INTERVAL
                if sum(epoch == last for _, epoch in seen) == NODES:
                    break
            assert [p.returncode for p in fleet.processes if p.poll() is not None] == []
            assert time.monotonic() < deadline, (
                f"{len(hosts)} of {NODES} nodes seen; measured from {measured_from}"
            )
            time.sleep(0.1)  # the poll's pace, not an assertion
    statuses = fleet.stop()
    said = fleet.said()

    assert statuses == [0] * NODES, said[-3000:]
    assert measured_from is not None
    late = [
        at - epoch - INTERVAL
        for (host, epoch), at in seen.items()
        if measured_from <= epoch < measured_from + MEASURED_TICKS * INTERVAL
    ]
    waits = sorted(late)
    print(
        f"{len(late)} ticks of {NODES} nodes through pgbouncer: first read "
        f"{statistics.median(waits) + INTERVAL:.2f} s after their epoch (median), "
        f"{waits[-1] + INTERVAL:.2f} s at most (late after {INTERVAL} s)"
    )
    assert len(late) == NODES * MEASURED_TICKS
    assert waits[-1] <= 0, f"a tick read {waits[-1]:.2f} s after its interval was over"
    # Every tick of every node written, none missing between its first and its last.
    for n in range(NODES):
        epochs = list(
            Sample.objects.filter(host=f"{PREFIX}{n:02d}")
            .order_by("epoch")
            .values_list("epoch", flat=True)
            .distinct()
        )
        assert epochs == list(range(epochs[0], epochs[-1] + 1, INTERVAL)), (n, epochs)
    for log in ("Traceback", "prepared statement", "ERROR"):
        assert log not in said, said[-3000:]
        assert log not in bouncer.logged_since(logged_from)
    # Nothing a client set is left for the next: each server connection of the pool has
    # the server's own statement_timeout and TimeZone.
    defaults = server_defaults()
    connections = server_connections(bouncer, dbname)
    assert len({pid for pid, _, _ in connections}) == POOL_SIZE
    assert {(timeout, zone) for _, timeout, zone in connections} == {
        (defaults["statement_timeout"], defaults["TimeZone"])
    }
