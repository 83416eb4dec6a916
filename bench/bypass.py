"""The framework bypasses of issue 27, item 7, against fair floors, in one run.

    .venv/bin/python bench/bypass.py                 # both tables, about 2 minutes
    .venv/bin/python bench/bypass.py --rounds 30     # more rounds (default 15)

Each endpoint is timed in one process through Django's WSGI handler (no HTTP, so the
machine's noise touches less), one request at a time; variants alternate request by
request inside each round, and the table gives the median over every request of each.

- ``processes``: GET api/gpu/processes, 8 fake GPUs x 32 live pids of this machine
  (256 rows, host details through psutil, reused from the host-detail cache), against
  ``bench/urls.py bare_api_processes``: a bare Django view that returns the same JSON
  bytes (the same NVML calls, rows, host fields from the same cache, order), built as
  dicts and encoded by ``json.dumps``. Target: >= 0.6x of the floor's throughput.
- ``history``: GET history for 1 hour at 360 points, 8 GPUs, on a SQLite file with a day
  of 10 s samples, against a bare Django view that runs the request's own SQL
  (captured with ``execute_wrapper``, run on the bare DB-API cursor, every row fetched)
  and returns ``json.dumps`` of the same answer. Target: <= 1.3x of the floor's time.

Variants (``bench/bypasses.py`` switches them in the running process): "folded", both
through the framework (DRF's own ``Serializer.to_representation``, ``GPUProcess(...)``);
"+ plan cache", the serializer plan cache of ``gpu_monitor.serializers`` (kept);
"+ new_process", the rows made without the dataclass's ``__init__`` (cf9df0a, folded);
"+ both". Every variant's bytes are checked equal to the floor's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "folded": (False, False),
    "+ plan cache": (True, False),
    "+ new_process": (False, True),
    "+ both": (True, True),
}


def wsgi_get(app: Any) -> Callable[[str], bytes]:
    def get(path: str) -> bytes:
        route, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": route,
            "QUERY_STRING": query,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "HTTP_HOST": "localhost",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
        }
        statuses: list[str] = []
        body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
        assert statuses[0].startswith("200"), (path, statuses, body[:300])
        return body

    return get


def timed_rounds(
    runs: dict[str, Callable[[], None]], rounds: int, per_round: int
) -> dict[str, list[float]]:
    """Milliseconds of each call, the variants alternating call by call (each first in
    turn), ``per_round`` calls of each in each of ``rounds`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for _ in range(per_round):
            for name in order:
                began = time.perf_counter()
                runs[name]()
                times[name].append(1000 * (time.perf_counter() - began))
    return times


def measure_processes(rounds: int) -> dict[str, Any]:
    """In a child whose environment is the fake NVML with 8 GPUs x 32 processes."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    from bench import bypasses

    get = wsgi_get(get_wsgi_application())
    api, floor = "/api/gpu/processes", "/bare/api-processes"
    for plan, rows in VARIANTS.values():  # same bytes, in the same second (same samples)
        bypasses.install(plan, rows)
        assert get(api) == get(floor), "the floor's bytes are not the API's"
    bypasses.uninstall()

    def variant(plan: bool, rows: bool) -> Callable[[], None]:
        def run() -> None:
            bypasses.install(plan, rows)
            get(api)
            bypasses.uninstall()

        return run

    runs: dict[str, Callable[[], None]] = {"floor": lambda: get(floor)}
    runs.update({name: variant(*switches) for name, switches in VARIANTS.items()})
    times = timed_rounds(runs, rounds, 20)
    body = json.loads(get(api))
    return {
        "rows": body["count"],
        "bytes": len(get(api)),
        "ms": {name: statistics.median(t) for name, t in times.items()},
        "requests": len(times["floor"]),
    }


def measure_history(rounds: int, days: int) -> dict[str, Any]:
    """In a child whose settings point at a SQLite file (BENCH_DB)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX
    from django.http import HttpRequest, HttpResponse
    from django.urls import clear_url_caches, path

    from bench import bypasses, urls
    from gpu_monitor.history.models import Sample
    from gpu_monitor.params import iso, moment

    call_command("migrate", verbosity=0)
    host, interval, gpus = "bench-node", 10, 8
    end = int(time.time()) // interval * interval
    start = end - days * 86400
    batch: list[Sample] = []
    for epoch in range(start, end, interval):
        tick = (epoch - start) // interval
        stamp = moment(epoch)
        for g in range(gpus):
            batch.append(
                Sample(
                    host=host, gpu_uuid=f"GPU-3a34af56-e2e8-164a-8e46-{g:012x}", gpu_index=g,
                    name="NVIDIA H100 80GB HBM3", epoch=epoch, timestamp=stamp,
                    utilization_percent=(tick * 7 + g * 13) % 101,
                    used_memory_mb=(tick * 31 + g) % 81559, total_memory_mb=81559,
                    temperature_c=30 + (tick + g) % 50, power_draw_w=70.0 + (tick % 600) / 7,
                    sm_clock_mhz=1980, ecc_errors_uncorrected_volatile=0,
                    remapped_rows_pending=False, clocks_event_reasons="",
                )
            )  # fmt: skip
        if len(batch) >= 8000:
            Sample.objects.bulk_create(batch)
            batch = []
    Sample.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    app = get_wsgi_application()
    get = wsgi_get(app)
    api = f"/api/gpu/history?host={host}&since={iso(end - 3600)}&until={iso(end)}&points=360"
    captured: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        captured.append((FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%"), params))
        return execute(sql, params, many, context)

    expected = get(api)
    with connection.execute_wrapper(capture):
        assert get(api) == expected
    answer = json.loads(expected)

    def bare_history(request: HttpRequest) -> HttpResponse:
        """The floor: the request's SQL on the bare cursor, then json.dumps of the answer."""
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        for sql, params in captured:
            cursor.execute(sql, params)
            cursor.fetchall()
        cursor.close()
        text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return HttpResponse(text.encode(), content_type="application/json")

    urls.urlpatterns.insert(0, path("bare/history", bare_history))
    clear_url_caches()
    floor = "/bare/history"
    assert get(floor) == expected, "the floor's bytes are not the API's"

    def variant(plan: bool) -> Callable[[], None]:
        def run() -> None:
            bypasses.install(plan, False)
            get(api)
            bypasses.uninstall()

        return run

    runs = {"floor": lambda: get(floor), "folded": variant(False), "+ plan cache": variant(True)}
    for name in runs:
        bypasses.install(name == "+ plan cache", False)
        assert get(floor if name == "floor" else api) == expected
        bypasses.uninstall()
    times = timed_rounds(runs, rounds, 5)
    return {
        "statements": len(captured),
        "bytes": len(expected),
        "samples": Sample.objects.count(),
        "ms": {name: statistics.median(t) for name, t in times.items()},
        "requests": len(times["floor"]),
    }


def child(which: str, rounds: int, days: int, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            which,
            "--rounds",
            str(rounds),
            "--days",
            str(days),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "bench"), str(ROOT / "tests" / "fakes"), str(ROOT)]
            ),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
            "FAKE_NVML_GPUS": "8",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"{which} failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def table(processes: dict[str, Any], history: dict[str, Any], rounds: int) -> None:
    print(
        f"\n## Framework bypasses against fair floors (bench/bypass.py, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, {rounds} rounds)\n"
    )
    ms = processes["ms"]
    print(
        f"GET api/gpu/processes: {processes['rows']} rows, {processes['bytes']:,} bytes, "
        f"{processes['requests']} requests of each, in one process (medians):\n"
    )
    print("| variant | ms per request | req/s | throughput / floor's (target >= 0.6) |")
    print("|---|---:|---:|---:|")
    for name, value in ms.items():
        ratio = ms["floor"] / value
        verdict = "" if name == "floor" else (" PASS" if ratio >= 0.6 else " FAIL")
        print(f"| {name} | {value:.2f} | {1000 / value:.0f} | {ratio:.2f}{verdict} |")
    ms = history["ms"]
    print(
        f"\nGET history, 1 hour at 360 points, 8 GPUs, SQLite ({history['samples']:,} samples "
        f"loaded, {history['statements']} statements, {history['bytes']:,} bytes), "
        f"{history['requests']} requests of each (medians):\n"
    )
    print("| variant | ms per request | time / floor's (target <= 1.3) |")
    print("|---|---:|---:|")
    for name, value in ms.items():
        ratio = value / ms["floor"]
        verdict = "" if name == "floor" else (" PASS" if ratio <= 1.3 else " FAIL")
        print(f"| {name} | {value:.2f} | {ratio:.2f}{verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--measure", choices=["processes", "history"], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--days", type=int, default=1, help="days of history loaded (default 1)")
    args = parser.parse_args()
    if args.measure == "processes":
        print(json.dumps(measure_processes(args.rounds)))
        return
    if args.measure == "history":
        print(json.dumps(measure_history(args.rounds, args.days)))
        return
    processes = child("processes", args.rounds, args.days, {"FAKE_NVML_PROCESSES": "32"})
    with tempfile.TemporaryDirectory() as tmp:
        history = child(
            "history", args.rounds, args.days, {"BENCH_DB": str(Path(tmp) / "bench.sqlite3")}
        )
    table(processes, history, args.rounds)


if __name__ == "__main__":
    main()
