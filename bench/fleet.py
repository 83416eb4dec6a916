"""Fleet at scale: 1,000 hosts x 8 GPUs recording every 10 s into one PostgreSQL.

    .venv/bin/python bench/fleet.py            # 300 s of ingest, then the reads (~15 minutes)
    .venv/bin/python bench/fleet.py --quick    # 30 s of ingest
    .venv/bin/python bench/fleet.py --smoke    # tiny sizes on SQLite files, seconds (a test)
    .venv/bin/python bench/fleet.py --quick --profile   # and cProfile 50 GET hosts

A throwaway PostgreSQL 15 cluster (tests/pgcluster.py) holds two databases: ``fleet``
(every host) and ``single`` (the history of one host only), their samples partitioned
by day as migration 0004 makes them (a partition for each day, as gpu_history_maintain
creates them ahead). In order:

1. History data: 7 days of 10 s samples of one host with 8 GPUs ("the target"), rolled
   up by the recorder's own ``roll_up``, in both databases; in ``fleet`` also 7 days of
   rollups of the 1,000 other hosts (``--other-gpus`` GPUs each, period by period as the
   recorders interleave them on disk), and XID events for one host in ten.
2. Ingest: ``--workers`` processes share the 1,000 hosts. Each host has its own
   ``Recorder`` and each tick goes through ``Recorder.write`` as in ``gpu_record``'s
   writer thread: one transaction with the samples, the tick writers (the fleet's host
   row) and the events, then the rollup of a period that is over and retention once a
   minute. Host ``h`` writes its tick ``h/1000`` of an interval after the tick's start,
   so 100 transactions a second arrive evenly. A tick is on time when it committed
   within one interval of its due time.
3. GET hosts (``page_size=1000`` and the default 500) through Django's test client,
   against its floor: the same answer built from raw SQL (the count, the rows' summary
   columns, the XID counts) and ``json.dumps``; the two answers are checked equal.
4. GET history of the target, 7 days at 300 points, on ``fleet`` and on ``single``; the
   two answers are checked equal.
5. The size per GPU-day of samples and rollups (``single``), and retention of one day:
   DELETE in batches as where samples are not partitioned (the target's first whole
   day in ``single``), and DROP of day partitions as ``gpu_history_maintain`` does
   (``fleet``: that day, then today's, which holds the ingest).

Every comparison is measured in interleaved rounds (each first in turn); medians.
"""

from __future__ import annotations

import argparse
import dataclasses
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
INTERVAL = 10
GPUS = 8
HOSTS = 1000
DAYS = 7
ROUNDS = 20
TARGET = "target-node"
RETENTION_S = 7 * 86400  # gpu_record's default


def host_name(h: int) -> str:
    return f"node{10000 + h}"  # sorts as the numbers do, in SQL too ('node' || 10000 + h)


class Router:
    """Every model on the database being measured (``Router.alias``)."""

    alias = "default"

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return Router.alias

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


def configure(db: str) -> None:
    """Django's settings: the tests' own, with the databases ``fleet`` (default) and
    ``single`` of ``db`` (``postgres:<socket dir>:<port>`` or ``sqlite:<dir>``)."""
    import django
    from django.conf import settings

    sys.path[:0] = [str(ROOT / "tests" / "fakes"), str(ROOT)]
    from tests import settings as base

    def database(name: str) -> dict[str, Any]:
        if db.startswith("postgres:"):
            _, host, port = db.split(":")
            return {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "USER": "postgres",
                "HOST": host,
                "PORT": port,
            }
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(Path(db.split(":", 1)[1]) / f"{name}.sqlite3"),
            "OPTIONS": {"timeout": 60},
        }

    values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    values.update(
        # The fleet's configuration: the history and the fleet (the usage sub-app's
        # writer, when installed, adds its own statements to each tick; notify needs it).
        INSTALLED_APPS=[
            app
            for app in base.INSTALLED_APPS
            if app not in ("gpu_monitor.usage", "gpu_monitor.notify")
        ],
        DATABASES={"default": database("fleet"), "single": database("single")},
        DATABASE_ROUTERS=[Router()],
        LOGGING={"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}},
    )
    settings.configure(**values)
    django.setup()


# -- 1. history data -------------------------------------------------------------


def numbers(name: str, count: int) -> str:
    """A CTE of the whole numbers 0 .. count - 1 (SQLite has no generate_series)."""
    return f"{name}(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM {name} WHERE n < {count - 1})"


def make_partitions(alias: str, first: int, last: int) -> None:
    """Where the samples are partitioned by day (PostgreSQL), a partition for each day
    from ``first`` to ``last`` (gpu_history_maintain makes them ahead)."""
    from gpu_monitor.history import partitions

    if partitions.is_partitioned(alias):
        days = (partitions.day_start(last) - partitions.day_start(first)) // partitions.DAY + 1
        for day in partitions.days_to_create(alias, first, days):
            partitions.create_day(alias, day)


def load_target(alias: str, start: int, ticks: int) -> None:
    """The target's samples from ``start``, ``ticks`` of them per GPU, then its rollups
    of every period that is over but the last, by the recorder's ``roll_up``."""
    from django.db import connections

    from gpu_monitor.history.aggregate import roll_up
    from gpu_monitor.history.models import ROLLUP_SECONDS

    connection = connections[alias]
    stamp = "to_timestamp" if connection.vendor == "postgresql" else "datetime"
    unix = "" if connection.vendor == "postgresql" else ", 'unixepoch'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE {numbers('t', ticks)}, {numbers('g', GPUS)} "
            "INSERT INTO gpu_monitor_history_sample (host, gpu_uuid, gpu_index, name, epoch, "
            "timestamp, utilization_percent, used_memory_mb, total_memory_mb, temperature_c, "
            "power_draw_w, sm_clock_mhz, ecc_errors_uncorrected_volatile, "
            "remapped_rows_pending, clocks_event_reasons) "
            "SELECT %s, 'GPU-target-' || g.n, g.n, 'NVIDIA H100 80GB HBM3', "
            f"%s + t.n * {INTERVAL}, {stamp}(%s + t.n * {INTERVAL}{unix}), "
            "(t.n * 7 + g.n * 13) %% 101, (t.n * 31 + g.n) %% 81559, 81559, "
            "30 + (t.n + g.n) %% 50, 70.0 + t.n %% 600, 1980, 0, FALSE, '' "
            "FROM t, g ORDER BY t.n, g.n",
            [TARGET, start, start],
        )
    end = start + ticks * INTERVAL
    roll_up(TARGET, start, end // ROLLUP_SECONDS * ROLLUP_SECONDS - ROLLUP_SECONDS, using=alias)


def load_others(alias: str, hosts: int, gpus: int, start: int, periods: int) -> None:
    """Rollups of ``hosts`` hosts x ``gpus`` GPUs for ``periods`` periods from
    ``start``, period by period (as the recorders write them), and XID events of the
    last day for one host in ten."""
    from django.db import connections

    from gpu_monitor.history.models import ROLLUP_SECONDS

    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE {numbers('p', periods)}, {numbers('h', hosts)}, "
            f"{numbers('g', gpus)} "
            "INSERT INTO gpu_monitor_history_rollup (host, gpu_uuid, gpu_index, name, epoch, "
            "utilization_sum, utilization_count, utilization_max, used_memory_max, "
            "total_memory_max, temperature_max, power_sum, power_count) "
            "SELECT 'node' || (10000 + h.n), 'GPU-' || h.n || '-' || g.n, g.n, "
            f"'NVIDIA H100 80GB HBM3', %s + p.n * {ROLLUP_SECONDS}, "
            "30 * ((p.n + h.n + g.n) %% 101), 30, (p.n + h.n + g.n) %% 101, "
            "(p.n * 31 + g.n) %% 81559, 81559, 30 + (p.n + g.n) %% 50, 30 * 250.0, 30 "
            "FROM p, h, g ORDER BY p.n, h.n, g.n",
            [start],
        )
    load_xids(alias, hosts, start + periods * ROLLUP_SECONDS)


def load_xids(alias: str, hosts: int, end: int) -> None:
    from gpu_monitor.history.models import Event
    from gpu_monitor.params import moment

    events = [
        Event(
            host=host_name(h),
            gpu_uuid=f"GPU-{h}-{n % GPUS}",
            gpu_index=n % GPUS,
            epoch=end - 600 * (n + 1),
            timestamp=moment(end - 600 * (n + 1)),
            kind=Event.Kind.XID,
            xid=79,
            message="XID 79",
        )
        for h in range(0, hosts, 10)
        for n in range(h % 7 + 1)
    ]
    Event.objects.using(alias).bulk_create(events)


# -- 2. ingest -------------------------------------------------------------------


def template_tick() -> Any:
    """One tick of the fake NVML's 8 GPUs, read by the recorder's own ``snapshot``:
    the samples and the devices as the API renders them, which each host's ticks vary."""
    from gpu_monitor.history.recorder import Recorder
    from gpu_monitor.manager import GPUManager

    recorder = Recorder(
        GPUManager(), host="template", interval=INTERVAL, retention_s=RETENTION_S, buffer_ticks=1
    )
    return recorder.sampler.snapshot(0)


def tick_of(template: Any, h: int, epoch: int) -> Any:
    """Host ``h``'s tick at ``epoch``: the template's GPUs with values of their own (one
    host in fifty has 2 uncorrected ECC errors on GPU 3, a problem for GET hosts)."""
    from gpu_monitor.history.buffer import Tick
    from gpu_monitor.history.models import Sample
    from gpu_monitor.params import moment

    n, stamp = epoch // INTERVAL, moment(epoch)
    tick = Tick(epoch)
    devices = []
    for g, device in enumerate(template.context.devices):
        uuid = f"GPU-{h}-{g}"
        utilization = (n * 7 + g * 13 + h) % 101
        used = (n * 31 + g + h) % 81559
        temperature = 30 + (n + g + h) % 50
        ecc = 2 if h % 50 == 0 and g == 3 else device.ecc_errors_uncorrected_volatile
        devices.append(
            dataclasses.replace(
                device,
                index=g,
                uuid=uuid,
                utilization_percent=utilization,
                used_memory_mb=used,
                temperature_c=temperature,
                ecc_errors_uncorrected_volatile=ecc,
            )
        )
        sample = template.samples[g % len(template.samples)]
        tick.samples.append(
            Sample(
                host=host_name(h),
                gpu_uuid=uuid,
                gpu_index=g,
                name=sample.name,
                epoch=epoch,
                timestamp=stamp,
                utilization_percent=utilization,
                used_memory_mb=used,
                total_memory_mb=sample.total_memory_mb,
                temperature_c=temperature,
                power_draw_w=sample.power_draw_w,
                sm_clock_mhz=sample.sm_clock_mhz,
                ecc_errors_uncorrected_volatile=ecc,
                remapped_rows_pending=sample.remapped_rows_pending,
                clocks_event_reasons=sample.clocks_event_reasons,
            )
        )
        tick.found[g] = uuid
    tick.context = dataclasses.replace(
        template.context,
        host=host_name(h),
        epoch=epoch,
        devices=devices,
    )
    return tick


def ingest_worker(
    worker: int, workers: int, hosts: int, seconds: int, interval: int, aligned: bool
) -> None:
    """A worker process: its hosts' recorders write their ticks on schedule (``aligned``:
    every host at the start of the interval, as wall-clock ticks with synchronised
    clocks would; else host ``h`` at ``h / hosts`` of it); says
    "ready", reads the start time on stdin, prints its measurements as JSON."""
    from gpu_monitor.history.recorded import read_recorded
    from gpu_monitor.history.recorder import Recorder
    from gpu_monitor.manager import GPUManager

    template = template_tick()
    manager = GPUManager()
    mine = []
    transaction_ms: list[float] = []
    for h in range(worker, hosts, workers):
        recorder = Recorder(
            manager,
            host=host_name(h),
            interval=interval,
            retention_s=RETENTION_S,
            buffer_ticks=360,
        )
        writer = recorder.writer
        writer.recorded, writer.dirty_from = read_recorded(writer.host, writer.alias)
        writer.reconciled = True
        writer.write_tick = timed(writer.write_tick, transaction_ms)  # type: ignore[method-assign]
        mine.append((h, recorder))
    print("ready", flush=True)
    start = int(sys.stdin.readline())
    write_ms, lag_s, cpu_ms, late, unwritten = [], [], [], 0, 0
    for n in range(seconds // interval):
        epoch = start + n * interval
        for h, recorder in mine:
            due = epoch if aligned else epoch + interval * h / hosts
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            cpu = time.process_time()
            tick = tick_of(template, h, epoch)
            recorder.buffer.add(tick)
            began = time.perf_counter()
            recorder.writer.write()
            write_ms.append(1000 * (time.perf_counter() - began))
            cpu_ms.append(1000 * (time.process_time() - cpu))
            lag = time.time() - due
            lag_s.append(lag)
            late += lag > interval
            unwritten += recorder.unwritten()
    print(
        json.dumps(
            {
                "transaction_ms": transaction_ms,
                "write_ms": write_ms,
                "lag_s": lag_s,
                "cpu_ms": cpu_ms,
                "late": late,
                "unwritten": unwritten,
            }
        ),
        flush=True,
    )


def timed(function: Any, into: list[float]) -> Any:
    def call(*args: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args)
        finally:
            into.append(1000 * (time.perf_counter() - began))

    return call


def ingest(
    db: str, workers: int, hosts: int, seconds: int, interval: int, aligned: bool
) -> dict[str, Any]:
    """Start the workers, give them one start time once all are ready, gather."""
    command = [sys.executable, __file__, "--db", db, "--hosts", str(hosts)]
    command += ["--seconds", str(seconds), "--interval", str(interval)]
    processes = [
        subprocess.Popen(
            [*command, "--ingest-worker", f"{k}/{workers}", *(["--aligned"] if aligned else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for k in range(workers)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    start = (int(time.time()) // interval + 1) * interval
    server, span = server_cpu_s(db), time.time()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start}\n")
        process.stdin.flush()
    merged: dict[str, Any] = {"transaction_ms": [], "write_ms": [], "lag_s": [], "cpu_ms": []}
    merged.update(late=0, unwritten=0)
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 600)
        if process.returncode != 0:
            raise SystemExit(f"ingest worker failed ({process.returncode})")
        part = json.loads(out.strip().splitlines()[-1])
        for key in merged:
            merged[key] += part[key]
    time.sleep(1)  # the backends' exit reaped: their time is the server's
    server, span = server_cpu_s(db) - server, time.time() - span
    ticks = len(merged["write_ms"])
    lag_s = sorted(merged["lag_s"])
    transaction_ms = sorted(merged["transaction_ms"])
    write_ms = sorted(merged["write_ms"])
    return {
        "ingest_s": seconds,
        "ticks": ticks,
        "ticks_per_s": ticks / seconds,
        "transaction_p50": statistics.median(transaction_ms),
        "transaction_p99": percentile(transaction_ms, 0.99),
        "transaction_max": transaction_ms[-1],
        "write_p50": statistics.median(write_ms),
        "write_p99": percentile(write_ms, 0.99),
        "write_max": write_ms[-1],
        "lag_p50_s": statistics.median(lag_s),
        "lag_p99_s": percentile(lag_s, 0.99),
        "lag_max_s": lag_s[-1],
        "client_cpu_ms": statistics.median(merged["cpu_ms"]),
        "server_cpu_share": server / span if db.startswith("postgres:") else None,
        "late": merged["late"],
        "unwritten": merged["unwritten"],
    }


def server_cpu_s(db: str) -> float:
    """CPU seconds the PostgreSQL server of ``db`` has used (the postmaster, its live
    children, and its exited children as reaped); 0 for SQLite."""
    if not db.startswith("postgres:"):
        return 0.0
    directory = db.split(":")[1]
    with open(os.path.join(directory, "data", "postmaster.pid")) as pidfile:
        postmaster = pidfile.readline().strip()
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if entry == postmaster or fields[1] == postmaster:  # fields[1]: the parent's pid
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


# -- 3. GET hosts ----------------------------------------------------------------


def hosts_floor(page_size: int, at: int) -> bytes:
    """GET hosts' answer from raw SQL: its count, the page's summary columns and the
    XID counts of the last day, as little Python as gives the same JSON."""
    from django.db import connection

    from gpu_monitor.conf import conf
    from gpu_monitor.fleet.hosts import XID_WINDOW_S, age_and_state
    from gpu_monitor.params import iso

    down_after = conf.get("FLEET_DOWN_AFTER")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM gpu_monitor_fleet_hoststate")
        (count,) = cursor.fetchone()
        cursor.execute(
            "SELECT host, epoch, interval_seconds, gpu_count, utilization_percent, "
            "used_memory_mb, total_memory_mb, max_temperature_c, problems "
            "FROM gpu_monitor_fleet_hoststate ORDER BY host LIMIT %s",
            [page_size],
        )
        rows = cursor.fetchall()
        cursor.execute(
            "SELECT host, COUNT(*) FROM gpu_monitor_history_event "
            "WHERE kind = 'xid' AND epoch > %s GROUP BY host",
            [at - XID_WINDOW_S],
        )
        xids = dict(cursor.fetchall())
    results = []
    for host, epoch, interval, gpus, utilization, used, total, hottest, problems in rows:
        age, state = age_and_state(epoch, interval, at, down_after)
        results.append(
            {
                "host": host,
                "last_seen": iso(epoch),
                "age_seconds": age,
                "state": state,
                "interval_seconds": interval,
                "gpu_count": gpus,
                "utilization_percent": utilization,
                "used_memory_mb": used,
                "total_memory_mb": total,
                "max_temperature_c": hottest,
                "problems": json.loads(problems) if isinstance(problems, str) else problems,
                "xid_24h": xids.get(host, 0),
            }
        )
    more = count > page_size
    answer = {
        "count": count,
        "next": f"http://localhost/api/gpu/hosts?page=2&page_size={page_size}" if more else None,
        "previous": None,
        "results": results,
    }
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


def get_hosts(rounds: int, profile: bool) -> dict[str, Any]:
    from django.test import Client

    from gpu_monitor.fleet import hosts

    client = Client()
    measured: dict[str, Any] = {}
    for page_size in (1000, 500):
        path = f"/api/gpu/hosts?page_size={page_size}" if page_size != 500 else "/api/gpu/hosts"
        at = hosts.now()
        original = hosts.now
        hosts.now = lambda at=at: at  # type: ignore[misc]  # one clock for both answers
        try:
            answer = json.loads(client.get(path, HTTP_HOST="localhost").content)
            floor = json.loads(hosts_floor(page_size, at))
        finally:
            hosts.now = original
        if page_size == 500:  # the default page's links carry no page_size
            floor["next"] = floor["next"] and floor["next"].replace("&page_size=500", "")
        assert answer == floor, "GET hosts and its floor disagree"
        assert len(answer["results"]) == min(page_size, answer["count"])

        def request(path: str = path) -> None:
            response = client.get(path, HTTP_HOST="localhost")
            assert response.status_code == 200, response.content[:300]

        def floor_run(size: int = page_size) -> None:
            hosts_floor(size, hosts.now())

        times = interleaved({"request": request, "floor": floor_run}, rounds)
        measured[f"hosts_{page_size}_p50"] = statistics.median(times["request"])
        measured[f"hosts_{page_size}_floor_p50"] = statistics.median(times["floor"])
        measured[f"hosts_{page_size}_rows"] = len(answer["results"])
        if profile and page_size == 1000:
            profile_requests(client, path)
    return measured


def interleaved(runs: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each run, ``rounds`` times, each first in turn (after one
    untimed call of each)."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            began = time.perf_counter()
            runs[name]()
            times[name].append(1000 * (time.perf_counter() - began))
    return times


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
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


# -- 4. history ------------------------------------------------------------------


def history(since: int, until: int, rounds: int) -> dict[str, Any]:
    from django.test import Client

    from gpu_monitor.params import iso

    client = Client()
    path = f"/api/gpu/history?host={TARGET}&since={iso(since)}&until={iso(until)}&points=300"

    def on(alias: str) -> Any:
        def request() -> bytes:
            Router.alias = alias
            try:
                response = client.get(path, HTTP_HOST="localhost")
            finally:
                Router.alias = "default"
            assert response.status_code == 200, response.content[:300]
            return response.content

        return request

    fleet, single = on("default"), on("single")
    answer = json.loads(fleet())
    assert answer == json.loads(single()), "the history differs between the databases"
    assert answer["series"], f"no series: {str(answer)[:300]}"
    assert answer["series"][0]["utilization_percent"][-1] is not None, str(answer)[-300:]
    times = interleaved({"fleet": fleet, "single": single}, rounds)
    return {
        "history_fleet_p50": statistics.median(times["fleet"]),
        "history_fleet_max": max(times["fleet"]),
        "history_single_p50": statistics.median(times["single"]),
        "history_points": len(answer["series"][0]["t"]),
    }


# -- 5. size and retention -----------------------------------------------------


def sizes(alias: str) -> dict[str, Any]:
    from django.db import connections

    connection = connections[alias]
    if connection.vendor != "postgresql":
        size = Path(connection.settings_dict["NAME"]).stat().st_size
        return {"samples_bytes": size, "rollups_bytes": 0}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT SUM(pg_total_relation_size(relid)) "
            "FROM pg_partition_tree('gpu_monitor_history_sample')), "
            "pg_total_relation_size('gpu_monitor_history_rollup')"
        )
        samples, rollups = cursor.fetchone()
    return {"samples_bytes": int(samples), "rollups_bytes": int(rollups)}


def retention(start: int) -> dict[str, Any]:
    """One day of samples: DELETE in the batches of the unpartitioned path (``single``,
    the target's first whole day), and DROP of day partitions (``fleet``: that day, then
    today's, which holds the ingest); each with its row count."""
    from django.db import connections

    from gpu_monitor.history import partitions
    from gpu_monitor.history.models import Sample
    from gpu_monitor.history.retention import RETENTION_BATCH

    day = partitions.day_start(start) + partitions.DAY
    statements: list[float] = []

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.startswith("DELETE"):
                statements.append(time.perf_counter() - began)

    Router.alias = "single"
    try:
        rows = Sample.objects.filter(host=TARGET, epoch__gte=day, epoch__lt=day + partitions.DAY)
        began = time.perf_counter()
        with connections["single"].execute_wrapper(timer):
            deleted = partitions.delete_in_batches(rows, RETENTION_BATCH)
        measured: dict[str, Any] = {
            "deleted": deleted,
            "delete_statements": len(statements),
            "delete_max_s": max(statements, default=0.0),
            "delete_s": time.perf_counter() - began,
            "drops": [],
        }
    finally:
        Router.alias = "default"
    if partitions.is_partitioned("default"):
        found = {p.start: p for p in partitions.partitions("default")}
        for first in dict.fromkeys([day, partitions.day_start(int(time.time()))]):
            count = Sample.objects.filter(epoch__gte=first, epoch__lt=first + partitions.DAY)
            measured["drops"].append((count.count(), partitions.drop("default", found[first])))
    return measured


# -- the run -----------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a child process configured for ``args.db`` (see ``main``)."""
    from django.core.management import call_command
    from django.db import connections

    from gpu_monitor.history.models import ROLLUP_SECONDS

    for alias in ("default", "single"):
        Router.alias = alias
        call_command("migrate", verbosity=0, database=alias)
    Router.alias = "default"
    results: dict[str, Any] = {"label": args.label}
    ticks = int(args.days * 86400) // INTERVAL
    end = (int(time.time()) // ROLLUP_SECONDS - 1) * ROLLUP_SECONDS
    start = end - ticks * INTERVAL
    began = time.perf_counter()
    for alias in ("default", "single"):
        Router.alias = alias
        make_partitions(alias, start, int(time.time()) + 2 * 86400)
        load_target(alias, start, ticks)
    Router.alias = "default"
    results["target_load_s"] = time.perf_counter() - began
    began = time.perf_counter()
    load_others("default", args.hosts, args.other_gpus, start, ticks * INTERVAL // ROLLUP_SECONDS)
    results["others_load_s"] = time.perf_counter() - began
    for alias in ("default", "single"):
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE")
        connections[alias].close()  # the workers begin with the server to themselves
    results.update(
        ingest(args.db, args.workers, args.hosts, args.seconds, args.interval, args.aligned)
    )
    results.update(get_hosts(args.rounds, args.profile))
    results.update(history(start, end, args.rounds))
    results.update(sizes("single"))
    results["gpu_days"] = GPUS * args.days
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM gpu_monitor_history_sample")
        results["fleet_samples"] = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM gpu_monitor_history_rollup")
        results["fleet_rollups"] = cursor.fetchone()[0]
    results.update(retention(start))
    results.update(hosts=args.hosts, days=args.days, other_gpus=args.other_gpus)
    results.update(workers=args.workers, interval=args.interval, aligned=args.aligned)
    return results


def child(db: str, args: argparse.Namespace, passed: list[str]) -> dict[str, Any]:
    env = {**os.environ, "FAKE_NVML_GPUS": str(GPUS)}
    result = subprocess.run(
        [sys.executable, __file__, "--measure", "--db", db, *passed],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        timeout=args.seconds + 3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{args.label} failed ({result.returncode})")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def postgresql(args: argparse.Namespace, passed: list[str]) -> dict[str, Any]:
    """The child run against a throwaway PostgreSQL cluster with two databases."""
    sys.path.insert(0, str(ROOT))
    from tests import pgcluster

    cluster = pgcluster.Cluster(tempfile.mkdtemp(prefix="gpu-monitor-bench-fleet-"), 54332)
    if os.geteuid() == 0:
        import shutil

        shutil.chown(cluster.directory, "postgres", "postgres")
    cluster.run(pgcluster.binary("initdb"), "-D", cluster.data, "-A", "trust", "-U", "postgres")
    cluster.start()
    try:
        for name in ("fleet", "single"):
            cluster.run(
                pgcluster.binary("createdb"),
                "-h",
                cluster.directory,
                "-p",
                str(cluster.port),
                "-U",
                "postgres",
                name,
            )
        return child(f"postgres:{cluster.directory}:{cluster.port}", args, passed)
    finally:
        cluster.remove()


def table(r: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    gpu_days = r["gpu_days"]
    rows = [
        (
            "hosts x GPUs, interval; ingest workers",
            f"{r['hosts']:,} x {GPUS}, {r['interval']} s; {r['workers']} processes"
            + ("; ticks aligned" if r["aligned"] else ""),
        ),
        (
            "ingest: ticks written in s (ticks/s; samples/s)",
            f"{r['ticks']:,} in {r['ingest_s']} ({r['ticks_per_s']:.0f}; "
            f"{r['ticks_per_s'] * GPUS:.0f})",
        ),
        (
            "ingest: tick transaction p50 / p99 / max ms",
            f"{r['transaction_p50']:.1f} / {r['transaction_p99']:.1f} / {r['transaction_max']:.0f}",
        ),
        (
            "ingest: Recorder.write (transaction, rollup, retention) p50 / p99 / max ms",
            f"{r['write_p50']:.1f} / {r['write_p99']:.1f} / {r['write_max']:.0f}",
        ),
        (
            "ingest: commit after due time p50 / p99 / max s",
            f"{r['lag_p50_s']:.2f} / {r['lag_p99_s']:.2f} / {r['lag_max_s']:.2f}",
        ),
        (
            "ingest: ticks committed more than one interval after due; not written",
            f"{r['late']:,} ({r['late'] / r['ticks']:.1%}); {r['unwritten']}",
        ),
        (
            "ingest: CPU of the simulated recorders per tick, p50 ms; of PostgreSQL, "
            "share of one core",
            f"{r['client_cpu_ms']:.1f}; "
            + (f"{r['server_cpu_share']:.0%}" if r["server_cpu_share"] is not None else "n/a"),
        ),
        (
            "GET hosts?page_size=1000: p50 ms / its floor (raw SQL + json.dumps) ms",
            f"{r['hosts_1000_p50']:.1f} / {r['hosts_1000_floor_p50']:.1f}",
        ),
        (
            "GET hosts?page_size=1000 / floor (target <= 2)",
            f"{r['hosts_1000_p50'] / r['hosts_1000_floor_p50']:.2f}",
        ),
        (
            "GET hosts (500 a page): p50 ms / floor ms; ratio",
            f"{r['hosts_500_p50']:.1f} / {r['hosts_500_floor_p50']:.1f}; "
            f"{r['hosts_500_p50'] / r['hosts_500_floor_p50']:.2f}",
        ),
        (
            f"history of one host, {r['days']:g} days at 300 points, {r['hosts']:,} other "
            f"hosts' data ({r['other_gpus']} GPUs each, rollups): p50 / max ms",
            f"{r['history_fleet_p50']:.1f} / {r['history_fleet_max']:.1f}",
        ),
        ("the same, that host's data only: p50 ms", f"{r['history_single_p50']:.1f}"),
        (
            f"history {r['hosts']:,} hosts / 1 host: p50 ratio (target <= 1.2)",
            f"{r['history_fleet_p50'] / r['history_single_p50']:.2f}",
        ),
        ("fleet database: samples, rollups", f"{r['fleet_samples']:,}, {r['fleet_rollups']:,}"),
        (
            "retention, DELETE of one day of one host in batches (unpartitioned path): "
            "rows, statements, slowest s, total s",
            f"{r['deleted']:,}, {r['delete_statements']}, {r['delete_max_s']:.3f}, "
            f"{r['delete_s']:.2f}",
        ),
        (
            "retention, DROP of a day's partition (target <= 1 s): rows, s",
            "; ".join(f"{rows:,}, {seconds:.3f}" for rows, seconds in r["drops"]) or "n/a",
        ),
        (
            "size per GPU-day at 10 s: samples (with indexes); rollups",
            f"{r['samples_bytes'] / gpu_days / 1048576:.2f} MiB; "
            f"{r['rollups_bytes'] / gpu_days / 1024:.0f} KiB",
        ),
    ]
    lines = [f"| measure | {r['label']} |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ingest-worker", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="PostgreSQL 15", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="30 s of ingest (default 300 s)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="20 hosts, 1.2 hours of history, 2 s of ingest at 1 s, SQLite files (a test)",
    )
    parser.add_argument("--seconds", type=int, help="seconds of ingest (default 300)")
    parser.add_argument(
        "--interval", type=int, default=INTERVAL, help=f"ingest interval s (default {INTERVAL})"
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="every host's tick due at the start of the interval (default: spread over it)",
    )
    parser.add_argument("--hosts", type=int, help=f"hosts (default {HOSTS})")
    parser.add_argument("--days", type=float, help=f"days of history (default {DAYS})")
    parser.add_argument(
        "--other-gpus", type=int, default=2, help="GPUs of each other host's rollups (default 2)"
    )
    parser.add_argument("--workers", type=int, default=4, help="ingest processes (default 4)")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile 50 GET hosts")
    args = parser.parse_args()
    args.seconds = args.seconds or (2 if args.smoke else 30 if args.quick else 300)
    args.hosts = args.hosts or (20 if args.smoke else HOSTS)
    args.days = args.days or (0.05 if args.smoke else DAYS)
    if args.smoke:
        args.workers, args.rounds, args.label = 1, min(args.rounds, 3), "SQLite (smoke)"
        args.interval = 1
    if args.db:
        configure(args.db)
    if args.ingest_worker:
        worker, workers = map(int, args.ingest_worker.split("/"))
        ingest_worker(worker, workers, args.hosts, args.seconds, args.interval, args.aligned)
        return
    if args.measure:
        print(json.dumps(measure(args), default=float))
        return
    passed = ["--seconds", str(args.seconds), "--hosts", str(args.hosts), "--days"]
    passed += [str(args.days), "--other-gpus", str(args.other_gpus), "--workers"]
    passed += [str(args.workers), "--rounds", str(args.rounds), "--label", args.label]
    passed += ["--interval", str(args.interval)]
    passed += ["--aligned"] if args.aligned else []
    passed += ["--profile"] if args.profile else []
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            results = child(f"sqlite:{tmp}", args, passed)
    else:
        results = postgresql(args, passed)
    print(f"\n## Fleet at scale (bench/fleet.py)\n\n{table(results)}")


if __name__ == "__main__":
    main()
