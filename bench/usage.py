"""Usage at scale: 30 days x 8 GPUs x 20 users of five-minute usage rows, SQLite and PostgreSQL.

    .venv/bin/python bench/usage.py               # both databases, one Markdown table
    .venv/bin/python bench/usage.py --quick       # SQLite only, 3 days loaded (seconds)
    .venv/bin/python bench/usage.py --holders 20  # every user on every GPU in every period

Per database (a SQLite file, and a throwaway PostgreSQL cluster from tests/pgcluster.py):
the usage rows of 30 days of 8 GPUs shared by 20 users are loaded (``--holders`` users on
each GPU in each five-minute period, 2 by default: one pair shares it, the users take
turns), then:

- ``GET usage`` for the 30 days by user, in-process through Django's test client, against
  its own SQL: the statements the view runs (captured with ``execute_wrapper``) run again
  on a bare DB-API cursor with every row fetched and nothing else done, in ``--rounds``
  rounds interleaved with the requests (each first in turn); the ratio is p50 request /
  p50 SQL (issue 21's target: at most 1.5). The same rounds time ``usage_report()``
  called directly (no HTTP, no DRF view) and the same request for a host with no rows.
- The recorder's tick on the fake NVML (8 GPUs, 2 processes of this machine's on each,
  so that psutil names real users) with the usage tick writer registered and without it,
  in interleaved ticks: with it, each tick also reads the processes and upserts the
  usage rows and holds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GPUS = 8
USERS = 20
DAYS = 30
HOLDERS = 2
ROUNDS = 20
TICKS = 60
PERIOD = 300
OPEN = {"PROCESS_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]}


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def load(host: str, start: int, periods: int, holders: int) -> int:
    """The usage rows of ``periods`` periods from ``start``: on each GPU, ``holders``
    users a period, taking turns every two hours; a third of the periods idle."""
    from gpu_monitor.usage.models import Usage

    batch: list[Usage] = []
    count = 0
    for n in range(periods):
        period = start + n * PERIOD
        shift = n // 24  # a user holds a GPU for two hours
        for g in range(GPUS):
            for h in range(holders):
                user = (g * holders + h + shift) % USERS
                idle = PERIOD if (n + g) % 3 == 0 else 0
                utilization = 0 if idle else (n * 7 + g * 13 + user) % 101
                memory = 1024 * (1 + (user + g) % 64)
                batch.append(
                    Usage(
                        host=host,
                        gpu_uuid=f"GPU-3a34af56-e2e8-164a-8e46-{g:012x}",
                        gpu_index=g,
                        user=f"user{user:02d}",
                        period=period,
                        seconds_held=PERIOD,
                        idle_seconds=idle,
                        shared_seconds=PERIOD if holders > 1 else 0,
                        utilization_sum=utilization * PERIOD,
                        utilization_seconds=PERIOD,
                        max_memory_mb=memory,
                        memory_mib_seconds=memory * PERIOD,
                        first_epoch=period + 10,
                        last_epoch=period + PERIOD,
                    )
                )
        if len(batch) >= 10000:
            Usage.objects.bulk_create(batch)
            count += len(batch)
            batch = []
    Usage.objects.bulk_create(batch)
    return count + len(batch)


def measure(
    label: str, days: int, holders: int, rounds: int, count: int, analyze: bool
) -> dict[str, Any]:
    """Runs in a child process whose settings point at one database (see main)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    end = int(time.time()) // PERIOD * PERIOD
    start = end - days * 86400
    began = time.perf_counter()
    rows = load("bench-node", start, days * 86400 // PERIOD, holders)
    load_s = time.perf_counter() - began
    # PostgreSQL's autovacuum analyzes a table soon after a load; Django never runs
    # ANALYZE on SQLite, so its planner has no statistics unless the site gathers them.
    if connection.vendor == "postgresql" or analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    client = Client()
    path = f"/api/gpu/usage?since={iso(start)}&until={iso(end)}&by=user"
    with override_settings(GPU_MONITOR=OPEN):
        times, statements, size, plan = request_and_floor(client, path, start, end, rounds)
        tick = ticks(end, count)
    return {
        "label": label,
        "rows": rows,
        "load_s": load_s,
        "statements": statements,
        "answer_bytes": size,
        "plan": plan,
        **{f"{name}_p50": statistics.median(ms) for name, ms in times.items()},
        "request_max": max(times["request"]),
        **{f"tick_{name}_p50": statistics.median(ms) for name, ms in tick.items()},
        **{f"tick_{name}_p99": ms[math.ceil(len(ms) * 0.99) - 1] for name, ms in tick.items()},
    }


def request_and_floor(
    client: Any, path: str, start: int, end: int, rounds: int
) -> tuple[dict[str, list[float]], int, int, str]:
    """Sorted times (ms) of the request, of its SQL run raw, of ``usage_report()``, and
    of the request for a host with no rows, interleaved; the statements the request
    runs; the size of its answer; how the database reads the rows (its plan's scan)."""
    from django.db import connection

    from gpu_monitor.usage.report import usage_report

    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, params))
        return execute(sql, params, many, context)

    expected = client.get(path, HTTP_HOST="localhost")
    assert expected.status_code == 200, expected.content[:300]
    assert len(json.loads(expected.content)["rows"]) == USERS
    with connection.execute_wrapper(capture):
        again = client.get(path, HTTP_HOST="localhost")
    assert again.content == expected.content
    bare = connection.connection  # the DB-API connection Django opened
    if connection.vendor == "sqlite":
        from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

        captured = [
            (FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%"), params)
            for sql, params in captured
        ]

    def run_sql() -> None:
        cursor = bare.cursor()
        for sql, params in captured:
            cursor.execute(sql, params)
            cursor.fetchall()
        cursor.close()

    def request(url: str = path) -> None:
        response = client.get(url, HTTP_HOST="localhost")
        assert response.status_code == 200, response.content[:300]

    runs: dict[str, Callable[[], Any]] = {
        "request": request,
        "sql": run_sql,
        "function": lambda: usage_report(since=start, until=end, by="user"),
        "empty": lambda: request(f"{path}&user=no-such-user"),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    run_sql()
    for round_ in range(rounds):
        names = list(runs)
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # in turn
            began = time.perf_counter()
            runs[name]()
            times[name].append(1000 * (time.perf_counter() - began))
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    cursor = bare.cursor()
    cursor.execute(explain + captured[0][0], captured[0][1])
    steps = [str(row[-1]) for row in cursor.fetchall()]
    cursor.close()
    scan = next(
        (
            step.strip(" ->")
            for step in steps
            if "Scan" in step or "SCAN" in step or "SEARCH" in step
        ),
        steps[0],
    )
    sorted_times = {name: sorted(ms) for name, ms in times.items()}
    return sorted_times, len(captured), len(expected.content), scan.split("  (cost")[0]


@contextmanager
def usage_writer(replaced_by: Any) -> Iterator[None]:
    """The recorder with the usage tick writer replaced by ``replaced_by`` (a timed
    wrapper), or without it (None: as a project without the sub-app)."""
    from unittest import mock

    from gpu_monitor import plugins
    from gpu_monitor.usage.writer import write_usage

    declared = plugins.tick_writers()
    writers = [(w, needs) for w, needs in declared if w is not write_usage]
    if replaced_by is not None:
        writers.append((replaced_by, True))
    with mock.patch.object(plugins, "tick_writers", lambda: writers):
        yield


def ticks(end: int, count: int) -> dict[str, list[float]]:
    """Sorted times (ms) of ``count`` ticks with the usage writer (and of the writer
    alone in them) and of ``count`` ticks without it, alternating."""
    from gpu_monitor.history.recorder import Recorder
    from gpu_monitor.manager import GPUManager
    from gpu_monitor.usage.models import Usage
    from gpu_monitor.usage.writer import write_usage

    times: dict[str, list[float]] = {"on": [], "writer": [], "off": []}

    def timed_write_usage(context: Any, using: str) -> None:
        began = time.perf_counter()
        try:
            write_usage(context, using)
        finally:
            times["writer"].append(1000 * (time.perf_counter() - began))

    recorder = Recorder(
        GPUManager(), host="bench-tick", interval=10, retention_s=10**9, buffer_ticks=360
    )
    recorder.retention.last_run = 10**12  # no pruning while timed
    recorder.tick(end)  # the first tick reads what the database holds
    for n in range(1, 2 * count + 1):
        on = n % 4 in (0, 3)  # on, off, off, on, ...: each first in turn
        with usage_writer(timed_write_usage if on else None):
            began = time.perf_counter()
            recorder.tick(end + n * 10)
            times["on" if on else "off"].append(1000 * (time.perf_counter() - began))
    assert Usage.objects.filter(host="bench-tick").exists(), "the usage writer wrote nothing"
    return {name: sorted(ms) for name, ms in times.items()}


def child(db: str, label: str, options: list[str]) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "tests.history.settings_process",
        "HISTORY_TEST_DB": db,
        "FAKE_NVML_GPUS": str(GPUS),
        "FAKE_NVML_PROCESSES": "2",
    }
    result = subprocess.run(
        [sys.executable, __file__, "--measure", label, *options],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"{label} failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def postgresql(options: list[str]) -> dict[str, Any]:
    """The child run against a throwaway PostgreSQL cluster."""
    from tests import pgcluster

    cluster = pgcluster.Cluster(tempfile.mkdtemp(prefix="gpu-monitor-bench-pg-"), 54332)
    if os.geteuid() == 0:
        import shutil

        shutil.chown(cluster.directory, "postgres", "postgres")
    cluster.run(pgcluster.binary("initdb"), "-D", cluster.data, "-A", "trust", "-U", "postgres")
    cluster.start()
    try:
        version = subprocess.run(
            [pgcluster.binary("postgres"), "--version"], capture_output=True, text=True
        ).stdout.split()[-1]
        return child(
            f"postgres:{cluster.directory}:{cluster.port}:postgres",
            f"PostgreSQL {version.split('.')[0]}",
            options,
        )
    finally:
        cluster.remove()


def table(results: list[dict[str, Any]], days: int, holders: int) -> None:
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (
            f"usage rows loaded ({days} days x {GPUS} GPUs x {USERS} users, "
            f"{holders} on a GPU a period)",
            lambda r: f"{r['rows']:,} in {r['load_s']:.0f} s",
        ),
        (
            f"GET usage {days} days by user ({USERS} rows): p50 / max ms",
            lambda r: f"{r['request_p50']:.1f} / {r['request_max']:.1f}",
        ),
        (
            "its SQL run raw in the same rounds (statements): p50 ms",
            lambda r: f"{r['sql_p50']:.1f} ({r['statements']})",
        ),
        (
            "**GET usage / its raw SQL: p50 ratio (target <= 1.5)**",
            lambda r: f"**{r['request_p50'] / r['sql_p50']:.2f}**",
        ),
        (
            "how the database reads the rows (the plan's scan)",
            lambda r: f"`{r['plan']}`",
        ),
        (
            "usage_report() called directly (the command's --json): p50 ms",
            lambda r: f"{r['function_p50']:.1f}",
        ),
        (
            "the same request for a host with no rows: p50 ms",
            lambda r: f"{r['empty_p50']:.2f}",
        ),
        (
            "recorder tick, 8 GPUs x 2 processes, usage writer on: p50 / p99 ms",
            lambda r: f"{r['tick_on_p50']:.2f} / {r['tick_on_p99']:.2f}",
        ),
        (
            "of which the usage writer (upsert, holds, events): p50 / p99 ms",
            lambda r: f"{r['tick_writer_p50']:.2f} / {r['tick_writer_p99']:.2f}",
        ),
        (
            "recorder tick, usage writer off (no processes read): p50 / p99 ms",
            lambda r: f"{r['tick_off_p50']:.2f} / {r['tick_off_p99']:.2f}",
        ),
    ]
    print("\n## Usage at scale (bench/usage.py)\n")
    print("| measure | " + " | ".join(r["label"] for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name, show in rows:
        print(f"| {name} | " + " | ".join(show(r) for r in results) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="SQLite only, 3 days loaded (default: both, 30)"
    )
    parser.add_argument("--days", type=int, help=f"days of rows (default {DAYS}, 3 quick)")
    parser.add_argument(
        "--holders",
        type=int,
        default=HOLDERS,
        choices=range(1, USERS + 1),
        metavar="N",
        help=f"users on each GPU in each period, 1 to {USERS} (default {HOLDERS})",
    )
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})"
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE SQLite after the load too (default: PostgreSQL only, as autovacuum)",
    )
    parser.add_argument(
        "--ticks", type=int, default=TICKS, help=f"recorder ticks on and off (default {TICKS})"
    )
    args = parser.parse_args()
    days = args.days or (3 if args.quick else DAYS)
    if args.measure:
        measured = measure(args.measure, days, args.holders, args.rounds, args.ticks, args.analyze)
        print(json.dumps(measured))
        return
    sys.path.insert(0, str(ROOT))
    options = [f"--days={days}", f"--holders={args.holders}", f"--rounds={args.rounds}"]
    options.append(f"--ticks={args.ticks}")
    options += ["--analyze"] if args.analyze else []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(child(str(Path(tmp) / "usage.sqlite3"), "SQLite", options))
    if not args.quick:
        results.append(postgresql(options))
    table(results, days, args.holders)


if __name__ == "__main__":
    main()
