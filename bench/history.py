"""History at scale: 8 GPUs x 7 days at 10 s (483,840 samples) on SQLite and PostgreSQL.

    .venv/bin/python bench/history.py            # both databases, one Markdown table
    .venv/bin/python bench/history.py --quick    # SQLite only, 1 day loaded (about a minute)
    .venv/bin/python bench/history.py --quick --profile   # and cProfile 50 hour requests

Per database (a SQLite file, and a throwaway PostgreSQL 15 cluster from tests/pgcluster.py):
the recorder's cost per tick (8 fake GPUs: snapshot and one transaction), GET history for
7 days at 300 points and for 1 hour at 360 points (p50 and p99 of 20 requests, in-process
through Django's test client), retention of one day's rows (the slowest DELETE statement
and the total), and the database size per GPU-day.

The floor of the 1 hour request is its own SQL: the statements the view runs for it
(captured with ``execute_wrapper``), run again on a bare DB-API cursor with every row
fetched and nothing else done, in 20 rounds (``--rounds``) interleaved with the requests
(each first in turn), so that both see the same machine; the ratio is p50 request / p50
SQL. The same rounds time that SQL then ``json.dumps`` of the answer, and the same
request for a host with no samples: their sum is the least a DRF view can take.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GPUS = 8
INTERVAL = 10
DAYS = 7
ROUNDS = 20


def measure(label: str, days: int, rounds: int, profile: bool) -> dict[str, Any]:
    """Runs in a child process whose settings point at one database (see main)."""
    ticks = days * 86400 // INTERVAL  # 7 days: 60,480 ticks, 483,840 samples
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from gpu_monitor.history import retention
    from gpu_monitor.history.models import Sample
    from gpu_monitor.history.recorder import Recorder
    from gpu_monitor.manager import GPUManager
    from gpu_monitor.params import moment

    call_command("migrate", verbosity=0)
    host = "bench-node"
    end = (int(time.time()) // INTERVAL) * INTERVAL
    start = end - ticks * INTERVAL
    # The fake NVML's UUIDs, so that the recorder's ticks continue the same series.
    uuids = ["GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772"] + [
        f"GPU-3a34af56-e2e8-164a-8e46-{g:012x}" for g in range(1, GPUS)
    ]
    loaded = time.perf_counter()
    batch: list[Sample] = []
    for tick in range(ticks):
        epoch = start + tick * INTERVAL
        stamp = moment(epoch)
        for g in range(GPUS):
            batch.append(
                Sample(
                    host=host,
                    gpu_uuid=uuids[g],
                    gpu_index=g,
                    name="NVIDIA H100 80GB HBM3",
                    epoch=epoch,
                    timestamp=stamp,
                    utilization_percent=(tick * 7 + g * 13) % 101,
                    used_memory_mb=(tick * 31 + g) % 81559,
                    total_memory_mb=81559,
                    temperature_c=30 + (tick + g) % 50,
                    power_draw_w=70.0 + (tick % 600),
                    sm_clock_mhz=1980,
                    ecc_errors_uncorrected_volatile=0,
                    remapped_rows_pending=False,
                    clocks_event_reasons="",
                )
            )
        if len(batch) >= 8000:
            Sample.objects.bulk_create(batch)
            batch = []
    Sample.objects.bulk_create(batch)
    load_s = time.perf_counter() - loaded
    rolled = time.perf_counter()
    from gpu_monitor.history.aggregate import roll_up

    roll_up(host, start, end)  # what gpu_record does for each period once it is over
    rollup_s = time.perf_counter() - rolled
    rows = Sample.objects.count()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE gpu_monitor_history_sample")
            cursor.execute(
                "SELECT pg_total_relation_size('gpu_monitor_history_sample')"
                " + pg_total_relation_size('gpu_monitor_history_rollup')"
            )
            size = cursor.fetchone()[0]
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        size = Path(connection.settings_dict["NAME"]).stat().st_size

    # The recorder: 8 fake GPUs, ticks after the loaded week (no pruning while timed).
    recorder = Recorder(
        GPUManager(), host=host, interval=INTERVAL, retention_s=10**9, buffer_ticks=360
    )
    recorder.retention.last_run = 10**12  # no pruning while timed
    tick_ms = []
    for n in range(1, 61):
        began = time.perf_counter()
        recorder.tick(end + n * INTERVAL)
        tick_ms.append(1000 * (time.perf_counter() - began))
    tick_ms.sort()

    client = Client()

    def timed(path: str) -> list[float]:
        client.get(path, HTTP_HOST="localhost")
        times = []
        for _ in range(20):
            began = time.perf_counter()
            response = client.get(path, HTTP_HOST="localhost")
            times.append(1000 * (time.perf_counter() - began))
            assert response.status_code == 200, response.content[:300]
        return sorted(times)

    week = timed(
        f"/api/gpu/history?host={host}&since={start}&until={end}&points=300".replace(
            f"since={start}", f"since={moment(start).isoformat().replace('+00:00', 'Z')}"
        ).replace(f"until={end}", f"until={moment(end).isoformat().replace('+00:00', 'Z')}")
    )
    hour_since = moment(end - 3600).isoformat().replace("+00:00", "Z")
    hour_until = moment(end).isoformat().replace("+00:00", "Z")
    hour_path = f"/api/gpu/history?host={host}&since={hour_since}&until={hour_until}&points=360"
    hour_times, statements_run = hour_and_floor(client, hour_path, rounds)
    hour = hour_times["request"]
    if profile:
        profile_requests(client, hour_path)
    one_gpu = timed(
        f"/api/gpu/history?host={host}&gpu=0&since={moment(start).isoformat()[:19]}Z"
        f"&until={hour_until}&points=300"
    )

    # Retention of one day's rows: every statement timed.
    statements: list[tuple[float, str]] = []

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((time.perf_counter() - began, sql))

    before = Sample.objects.filter(host=host).count()
    kept_s = (days - 1) * 86400 + 60 * INTERVAL  # the oldest day goes
    pruned = time.perf_counter()
    original_budget = retention.RETENTION_BUDGET_S
    retention.RETENTION_BUDGET_S = 3600.0  # all of it in one run, to time it whole
    with connection.execute_wrapper(timer):
        recorder.retention.prune(recorder.writer.alias, host, end + 60 * INTERVAL - kept_s)
    retention.RETENTION_BUDGET_S = original_budget
    prune_s = time.perf_counter() - pruned
    deleted = before - Sample.objects.filter(host=host).count()
    deletes = [seconds for seconds, sql in statements if sql.startswith("DELETE")]
    return {
        "label": label,
        "rows": rows,
        "load_s": load_s,
        "rollup_s": rollup_s,
        "size_bytes": size,
        "tick_ms_p50": statistics.median(tick_ms),
        "tick_ms_p99": tick_ms[int(len(tick_ms) * 0.99) - 1] if tick_ms else 0,
        "week_p50": statistics.median(week),
        "week_p99": week[-1],
        "hour_p50": statistics.median(hour),
        "hour_p99": hour[-1],
        "raw_p50": statistics.median(hour_times["sql"]),
        "raw_json_p50": statistics.median(hour_times["sql_json"]),
        "empty_p50": statistics.median(hour_times["empty"]),
        "raw_statements": statements_run,
        "one_gpu_week_p50": statistics.median(one_gpu),
        "deleted": deleted,
        "delete_statements": len(deletes),
        "delete_max_s": max(deletes) if deletes else 0.0,
        "prune_s": prune_s,
    }


def hour_and_floor(client: Any, path: str, rounds: int) -> tuple[dict[str, list[float]], int]:
    """Sorted times of the request, of its SQL, of its SQL then ``json.dumps`` of its
    answer, and of the same request for a host with no samples (what handling it costs
    whatever the rows), interleaved (see the module's docstring); and how many
    statements the request runs."""
    from django.db import connection

    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((sql, params))
        return execute(sql, params, many, context)

    expected = client.get(path, HTTP_HOST="localhost")
    assert expected.status_code == 200, expected.content[:300]
    with connection.execute_wrapper(capture):
        again = client.get(path, HTTP_HOST="localhost")
    assert again.content == expected.content
    answer = json.loads(expected.content)
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

    def sql_and_json() -> None:
        run_sql()
        json.dumps(answer, ensure_ascii=False, separators=(",", ":"))

    def request(url: str = path) -> None:
        response = client.get(url, HTTP_HOST="localhost")
        assert response.status_code == 200, response.content[:300]

    empty = path.replace("host=", "host=no-such-")  # the same request, no row to read
    runs = {
        "request": request,
        "sql": run_sql,
        "sql_json": sql_and_json,
        "empty": lambda: request(empty),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    run_sql()
    for round_ in range(rounds):
        names = list(runs)
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # in turn
            began = time.perf_counter()
            runs[name]()
            times[name].append(1000 * (time.perf_counter() - began))
    return {name: sorted(ms) for name, ms in times.items()}, len(captured)


def profile_requests(client: Any, path: str) -> None:
    """cProfile of 50 requests, the top of it on stderr."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(50):
        client.get(path, HTTP_HOST="localhost")
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def child(db: str, label: str, options: list[str]) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "tests.history.settings_process",
        "HISTORY_TEST_DB": db,
        "FAKE_NVML_GPUS": str(GPUS),
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
    if "--profile" in options:
        sys.stderr.write(result.stderr)
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="SQLite only, 1 day loaded (default: both, 7 days)"
    )
    parser.add_argument("--days", type=int, help="days of samples loaded (default 7, 1 quick)")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile 50 hour requests (default: no)"
    )
    args = parser.parse_args()
    days = args.days or (1 if args.quick else DAYS)
    if args.measure:
        print(json.dumps(measure(args.measure, days, args.rounds, args.profile)))
        return
    sys.path.insert(0, str(ROOT))
    results = []
    options = ["--days", str(days), "--rounds", str(args.rounds)]
    options += ["--profile"] if args.profile else []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(child(str(Path(tmp) / "history.sqlite3"), "SQLite", options))
    if not args.quick:
        results.append(postgresql(options))
    table(results, days)


def postgresql(options: list[str]) -> dict[str, Any]:
    """The child run against a throwaway PostgreSQL cluster."""
    from tests import pgcluster

    cluster = pgcluster.Cluster(tempfile.mkdtemp(prefix="gpu-monitor-bench-pg-"), 54331)
    if os.geteuid() == 0:
        import shutil

        shutil.chown(cluster.directory, "postgres", "postgres")
    cluster.run(pgcluster.binary("initdb"), "-D", cluster.data, "-A", "trust", "-U", "postgres")
    cluster.start()
    try:
        return child(
            f"postgres:{cluster.directory}:{cluster.port}:postgres", "PostgreSQL 15", options
        )
    finally:
        cluster.remove()


def table(results: list[dict[str, Any]], days: int) -> None:
    gpu_days = GPUS * days
    rows = [
        (
            f"samples loaded (8 GPUs x {days} days at 10 s)",
            lambda r: f"{r['rows']:,} in {r['load_s']:.0f} s",
        ),
        (
            f"rollups of the whole {days} days at once (gpu_record does one period at a time)",
            lambda r: f"{r['rollup_s']:.1f} s",
        ),
        (
            "recorder tick, 8 GPUs: p50 / p99 ms (target p50 <= 5)",
            lambda r: f"{r['tick_ms_p50']:.2f} / {r['tick_ms_p99']:.2f}",
        ),
        (
            f"history {days} days, 300 points, every GPU: p50 / max ms (target p50 <= 100)",
            lambda r: f"{r['week_p50']:.1f} / {r['week_p99']:.1f}",
        ),
        (
            f"history {days} days, 300 points, one GPU: p50 ms",
            lambda r: f"{r['one_gpu_week_p50']:.1f}",
        ),
        (
            "history 1 hour, 360 points, every GPU: p50 / max ms",
            lambda r: f"{r['hour_p50']:.1f} / {r['hour_p99']:.1f}",
        ),
        (
            "its SQL run raw in the same rounds (statements): p50 ms",
            lambda r: f"{r['raw_p50']:.1f} ({r['raw_statements']})",
        ),
        (
            "history 1 hour / its raw SQL: p50 ratio (target <= 1.3)",
            lambda r: f"{r['hour_p50'] / r['raw_p50']:.2f}",
        ),
        (
            "its raw SQL then json.dumps of its answer: p50 ms (ratio to raw SQL)",
            lambda r: f"{r['raw_json_p50']:.1f} ({r['raw_json_p50'] / r['raw_p50']:.2f})",
        ),
        (
            "the same request for a host with no samples: p50 ms",
            lambda r: f"{r['empty_p50']:.2f}",
        ),
        (
            "least a DRF view can take (SQL + json.dumps + empty request) / raw SQL",
            lambda r: f"{(r['raw_json_p50'] + r['empty_p50']) / r['raw_p50']:.2f}",
        ),
        (
            "retention of one day: rows, DELETE statements",
            lambda r: f"{r['deleted']:,}, {r['delete_statements']}",
        ),
        (
            "retention: slowest statement s (target <= 1), total s",
            lambda r: f"{r['delete_max_s']:.3f}, {r['prune_s']:.2f}",
        ),
        (
            "database size per GPU-day (samples, rollups, indexes)",
            lambda r: f"{r['size_bytes'] / gpu_days / 1048576:.2f} MiB",
        ),
    ]
    print("\n## History at scale (bench/history.py)\n")
    print("| measure | " + " | ".join(r["label"] for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name, show in rows:
        print(f"| {name} | " + " | ".join(show(r) for r in results) + " |")


if __name__ == "__main__":
    main()
