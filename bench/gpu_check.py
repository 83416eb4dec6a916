"""Real-GPU check: gpu_monitor's numbers against nvidia-smi on this machine.

Run through ``bench/gpu_check`` (which installs the carried wheels first). Needs an
NVIDIA GPU, its driver and nvidia-smi; no network. Prints one PASS/FAIL table and
writes it, with the raw readings, to ``$OUT`` (default ``/tmp/gpu_check``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import ROOT, free_port, interleaved_wall_times  # bench/common.py, beside this
from startup import DJANGO_FLOOR  # bench/startup.py, beside this script

OUT = Path(os.environ.get("OUT") or "/tmp/gpu_check")
PY = sys.executable
SMI_FIELDS = (
    "index,name,memory.total,memory.used,memory.free,temperature.gpu,utilization.gpu,"
    "driver_version,uuid,pci.bus_id,power.draw,enforced.power.limit,pstate,clocks.sm,"
    "clocks.mem,utilization.memory,fan.speed"
)
PYNVML_FLOOR = (
    "import pynvml; pynvml.nvmlInit(); "
    "h = pynvml.nvmlDeviceGetHandleByIndex(0); pynvml.nvmlDeviceGetMemoryInfo(h); "
    "pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU); pynvml.nvmlShutdown()"
)
# Health fields: (nvidia-smi query field, the API's field, how the API's value prints there)
HEALTH_FIELDS = [
    ("ecc.mode.current", "ecc_mode", lambda v: v),
    ("ecc.errors.corrected.volatile.total", "ecc_errors_corrected_volatile", str),
    ("ecc.errors.uncorrected.volatile.total", "ecc_errors_uncorrected_volatile", str),
    ("ecc.errors.corrected.aggregate.total", "ecc_errors_corrected_aggregate", str),
    ("ecc.errors.uncorrected.aggregate.total", "ecc_errors_uncorrected_aggregate", str),
    ("retired_pages.pending", "retired_pages_pending", lambda v: "yes" if v else "no"),
    ("remapped_rows.correctable", "remapped_rows_correctable", str),
    ("remapped_rows.uncorrectable", "remapped_rows_uncorrectable", str),
    ("remapped_rows.pending", "remapped_rows_pending", lambda v: "yes" if v else "no"),
    ("remapped_rows.failure", "remapped_rows_failure", lambda v: "yes" if v else "no"),
    ("persistence_mode", "persistence_mode", lambda v: v),
    ("compute_mode", "compute_mode", lambda v: v),
    ("utilization.encoder", "encoder_utilization_percent", str),
    ("utilization.decoder", "decoder_utilization_percent", str),
    ("mig.mode.current", "mig_mode", lambda v: v),
]
REASON_BITS = {  # nvidia-smi's clocks_event_reasons.active mask, by our names
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}
results: list[tuple[str, bool, str]] = []
raw: dict[str, Any] = {}


def record(name: str, ok: bool, detail: str) -> None:
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def run(
    cmd: list[str], timeout: float = 120, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


def smi_rows() -> list[dict[str, str]]:
    out = run(["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"]).stdout
    keys = SMI_FIELDS.split(",")
    return [
        dict(zip(keys, (v.strip() for v in line.split(",")), strict=True))
        for line in out.strip().splitlines()
    ]


def smi_query(fields: list[str], query: str = "--query-gpu") -> list[dict[str, str]]:
    """nvidia-smi's values of ``fields`` for each GPU (or each process, for
    ``--query-compute-apps``), as it prints them without units."""
    out = run(["nvidia-smi", f"{query}={','.join(fields)}", "--format=csv,noheader,nounits"])
    return [
        dict(zip(fields, (v.strip() for v in line.split(",")), strict=True))
        for line in out.stdout.strip().splitlines()
        if line.strip()
    ]


def same_value(smi: str, ours: Any, shown: Any) -> bool:
    """nvidia-smi's text against ours: "[N/A]"/"N/A"/"[Not Supported]" is our null."""
    if smi.strip("[]") in ("N/A", "Not Supported", "Unknown Error"):
        return ours is None
    return ours is not None and str(shown(ours)).lower() == smi.lower()


def smi_cuda_version() -> str:
    match = re.search(r"CUDA Version:\s*([0-9.]+)", run(["nvidia-smi"]).stdout)
    return match.group(1) if match else "?"


def fetch_text(url: str, accept: str | None = None) -> tuple[int, str]:
    headers = {"Connection": "close", **({"Accept": accept} if accept else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get(url: str) -> tuple[int, Any]:
    status, text = fetch_text(url, accept="application/json")
    return status, json.loads(text or "null")


def start(
    cmd: list[str], port: int, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DJANGO_DEBUG": "0", **(extra_env or {})}
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    for _ in range(150):
        try:
            get(f"http://127.0.0.1:{port}/api/gpu/status")
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{cmd[:4]} did not start; see {log}")


def close(value: str, ours: Any, tolerance: float) -> bool:
    try:
        return ours is not None and abs(float(value) - float(ours)) <= tolerance
    except ValueError:
        return False


def check_integration_tests() -> None:
    result = run(
        [
            PY,
            "-m",
            "pytest",
            "tests/integration",
            "-o",
            "addopts=",
            "-q",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
        ],
        timeout=300,
    )
    tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    raw["integration_tests"] = result.stdout[-4000:] + result.stderr[-2000:]
    record("integration tests (real NVML)", result.returncode == 0, tail)


def check_server_against_smi() -> None:
    port = free_port()
    server = start(
        [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        port,
        OUT / "runserver.log",
    )
    try:
        before = smi_rows()
        health_keys = [key for key, _, _ in HEALTH_FIELDS] + ["clocks_event_reasons.active"]
        health_before = smi_query(health_keys)
        _, devices = get(f"http://127.0.0.1:{port}/api/gpu/devices")
        driver_status, driver = get(f"http://127.0.0.1:{port}/api/gpu/driver")
        after = smi_rows()
        health_after = smi_query(health_keys)
        check_other_endpoints(port, devices)
    finally:
        server.terminate()
        server.wait(10)
    cuda = smi_cuda_version()
    raw.update(
        smi_before=before,
        smi_after=after,
        api_devices=devices,
        api_driver=driver,
        smi_cuda=cuda,
        smi_health=[health_before, health_after],
    )
    check_health_fields(devices, health_before, health_after)
    record(
        "device count",
        devices["count"] == len(before) >= 1,
        f"api {devices['count']}, nvidia-smi {len(before)}",
    )
    record(
        "driver version",
        driver_status == 200 and driver["driver_version"] == before[0]["driver_version"],
        f"api {driver.get('driver_version')!r}, nvidia-smi {before[0]['driver_version']!r}",
    )
    record(
        "CUDA version",
        driver.get("cuda_driver_version") == cuda,
        f"api {driver.get('cuda_driver_version')!r}, nvidia-smi header {cuda!r}",
    )
    for device, smi0, smi1 in zip(devices["devices"], before, after, strict=False):
        i = device["index"]
        pairs = {
            "name": (device["name"], "name"),
            "memory total MiB": (device["total_memory_mb"], "memory.total"),
            "memory used MiB": (device["used_memory_mb"], "memory.used"),
            "memory free MiB": (device["free_memory_mb"], "memory.free"),
            "uuid": (device["uuid"], "uuid"),
            "PCI bus id": (device["pci_bus_id"], "pci.bus_id"),
            "performance state": (device["performance_state"], "pstate"),
        }
        for label, (ours, key) in pairs.items():
            ok = str(ours) in (smi0[key], smi1[key])
            record(f"GPU {i} {label}", ok, f"api {ours!r}, nvidia-smi {smi0[key]!r}/{smi1[key]!r}")
        tolerant = {
            "temperature C (+-2)": (device["temperature_c"], "temperature.gpu", 2),
            "power limit W (+-0.01)": (device["power_limit_w"], "enforced.power.limit", 0.01),
            "power draw W (+-10)": (device["power_draw_w"], "power.draw", 10),
            "SM clock MHz (+-100)": (device["sm_clock_mhz"], "clocks.sm", 100),
            "memory clock MHz (+-100)": (device["memory_clock_mhz"], "clocks.mem", 100),
        }
        for label, (ours, key, tol) in tolerant.items():
            ok = close(smi0[key], ours, tol) or close(smi1[key], ours, tol)
            record(f"GPU {i} {label}", ok, f"api {ours!r}, nvidia-smi {smi0[key]!r}/{smi1[key]!r}")
        fan_na = smi0["fan.speed"].startswith("[N/A") or smi0["fan.speed"] == "N/A"
        fan_ok = (
            (device["fan_speed_percent"] is None)
            if fan_na
            else close(smi0["fan.speed"], device["fan_speed_percent"], 5)
        )
        record(
            f"GPU {i} fan",
            fan_ok,
            f"api {device['fan_speed_percent']!r} "
            f"(field_errors {device['field_errors']}), nvidia-smi {smi0['fan.speed']!r}",
        )


def check_health_fields(
    devices: dict[str, Any], before: list[dict[str, str]], after: list[dict[str, str]]
) -> None:
    """Every health field against nvidia-smi's query field, read just before and after."""
    for device, smi0, smi1 in zip(devices["devices"], before, after, strict=False):
        i = device["index"]
        for key, field, shown in HEALTH_FIELDS:
            ours = device[field]
            ok = same_value(smi0[key], ours, shown) or same_value(smi1[key], ours, shown)
            reason = device["field_errors"].get(field, "")
            record(
                f"GPU {i} {field}",
                ok,
                f"api {ours!r}{f' ({reason})' if reason else ''}, nvidia-smi {key} "
                f"{smi0[key]!r}/{smi1[key]!r}",
            )
        ours = device["clocks_event_reasons"]
        mask = sum(REASON_BITS.get(name, 0) for name in ours or [])
        masks = []
        for row in (smi0, smi1):
            try:
                masks.append(int(row["clocks_event_reasons.active"], 16))
            except ValueError:
                masks.append(None)
        record(
            f"GPU {i} clocks_event_reasons",
            ours is not None and mask in masks,
            f"api {ours} (mask {mask:#x}), "
            f"nvidia-smi active {[hex(m) for m in masks if m is not None]}",
        )
        record(
            f"GPU {i} mig_devices (MIG off: none)",
            (device["mig_mode"] == "enabled") == bool(device["mig_devices"]),
            f"mig_mode {device['mig_mode']!r}, {len(device['mig_devices'])} MIG device(s)",
        )


def check_field_values_path() -> None:
    """The ECC, remap and retired-page counters read in one nvmlDeviceGetFieldValues call
    against the one-call-per-counter functions, on the same GPU, twice each way."""
    code = (
        "import json; from gpu_monitor.manager import GPUManager;"
        "from gpu_monitor.manager.health import COUNTERS; m = GPUManager();"
        "fields = [f for f, _, _ in COUNTERS]; one = lambda: m.get_device(0);"
        "a = one(); m._session.field_values = False; b = one();"
        "print(json.dumps([{f: getattr(d, f) for f in fields} for d in (a, b)]"
        " + [{f: d.field_errors.get(f) for f in fields} for d in (a, b)]))"
    )
    result = run([PY, "-c", code])
    if result.returncode != 0:
        record("field values equal one-by-one counters", False, result.stderr[-300:])
        return
    by_field_values, one_by_one, errors_a, errors_b = json.loads(result.stdout)
    raw["field_values_vs_one_by_one"] = [by_field_values, one_by_one, errors_a, errors_b]
    differ = {f for f in by_field_values if by_field_values[f] != one_by_one[f]}
    record(
        "nvmlDeviceGetFieldValues gives the same counters as the one-by-one calls",
        not differ,
        f"differ: {sorted(differ) or 'none'}; field values {by_field_values}; "
        f"errors {errors_a} / {errors_b}",
    )


def time_nvml_calls() -> None:
    """Median and p99 of each NVML call the app makes for GET devices, 1000 calls each."""
    result = run([PY, "-m", "bench.nvml_timing"], timeout=300)
    if result.returncode != 0:
        record("NVML call timings", False, result.stderr[-300:])
        return
    rows = json.loads(result.stdout)
    raw["nvml_call_us"] = rows
    lines = ["| NVML call | median us | p99 us |", "|---|---:|---:|"]
    for name, value in rows.items():
        if isinstance(value, str):
            lines.append(f"| {name} | {value} | |")
        else:
            lines.append(f"| {name} | {value[0]:.1f} | {value[1]:.1f} |")
    table = "\n".join(lines)
    print(table, flush=True)
    (OUT / "nvml_calls.md").write_text(table + "\n")
    record("NVML call timings (1000 calls each, table above)", True, f"{len(rows)} calls timed")


def check_processes_against_smi() -> None:
    """A real CUDA process holding 1 GiB: the API lists it as nvidia-smi does, with the
    right user and name, and not after it exits."""
    holder = subprocess.Popen(
        [PY, str(ROOT / "bench" / "cuda_hold.py"), "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline().strip()
    if not line.startswith("ready"):
        holder.kill()
        record(
            "CUDA process started",
            False,
            f"{line!r} {holder.stderr.read()[-300:] if holder.stderr else ''}",
        )
        return
    pid = int(line.split()[1])
    port = free_port()
    env_settings = {"DJANGO_SETTINGS_MODULE": "tests.e2e.settings_open_processes"}
    server = start(
        [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        port,
        OUT / "runserver-processes.log",
        env_settings,
    )
    base = f"http://127.0.0.1:{port}/api/gpu"
    try:
        time.sleep(1.0)  # let NVML account the allocation
        smi0 = smi_query(["pid", "used_memory"], "--query-compute-apps")
        status, body = get(f"{base}/processes")
        smi1 = smi_query(["pid", "used_memory"], "--query-compute-apps")
        raw.update(processes_api=body, processes_smi=[smi0, smi1])
        ours = [p for p in body.get("processes", []) if p["pid"] == pid]
        smi_memory = {row["used_memory"] for row in smi0 + smi1 if row["pid"] == str(pid)}
        record(
            "processes: the CUDA process is listed",
            status == 200 and len(ours) == 1,
            f"{status}, pid {pid}, {len(ours)} row(s)",
        )
        if ours:
            process = ours[0]
            record(
                "processes: used_memory_mb equals nvidia-smi --query-compute-apps",
                str(process["used_memory_mb"]) in smi_memory,
                f"api {process['used_memory_mb']}, nvidia-smi {sorted(smi_memory)}",
            )
            import getpass

            record(
                "processes: user and name",
                process["username"] == getpass.getuser()
                and (process["name"] or "").startswith("python"),
                f"api {process['username']!r} {process['name']!r} ({process['field_errors']})",
            )
            record("processes: type compute", process["type"] == "compute", process["type"])
        holder.terminate()
        holder.wait(10)
        time.sleep(1.0)
        status, body = get(f"{base}/processes")
        gone = all(p["pid"] != pid for p in body.get("processes", []))
        record(
            "processes: gone after the process exits",
            status == 200 and gone,
            f"{status}, {body.get('count')} listed",
        )
    finally:
        if holder.poll() is None:
            holder.kill()
        server.terminate()
        server.wait(10)


def check_history_minute() -> None:
    """gpu_record for a minute on the real GPU (a SQLite file), nvidia-smi read at each
    tick beside it: every recorded sample matches nvidia-smi's reading of that tick."""
    db = OUT / "history.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.history.settings_process",
        "HISTORY_TEST_DB": str(db),
    }
    migrate = run([PY, "manage.py", "migrate", "--verbosity", "0"], env=env)
    if migrate.returncode != 0:
        record("history: migrate", False, migrate.stderr[-300:])
        return
    recorder = subprocess.Popen(
        [PY, "manage.py", "gpu_record", "--interval", "5", "--host", "gpu-check"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(OUT / "gpu_record.log").open("wb"),
    )
    fields = ["utilization.gpu", "memory.used", "temperature.gpu", "power.draw"]
    readings: dict[int, list[dict[str, str]]] = {}
    started = time.time()
    try:
        while time.time() - started < 62:
            tick = int(time.time()) // 5 * 5
            readings.setdefault(tick, smi_query(fields))
            time.sleep(0.5)
    finally:
        recorder.send_signal(signal.SIGTERM)
        code = recorder.wait(10)
    code_text = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/api/gpu/history', {'host': 'gpu-check', 'since': '-2m',"
        " 'points': 24}, HTTP_HOST='localhost'); print(r.content.decode())"
    )
    result = run([PY, "-c", code_text], env=env)
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        samples = conn.execute(
            "SELECT gpu_index, epoch, utilization_percent, used_memory_mb, temperature_c, "
            "power_draw_w FROM gpu_monitor_history_sample ORDER BY epoch, gpu_index"
        ).fetchall()
    raw["history_samples"] = samples
    raw["history_smi"] = readings
    raw["history_api"] = result.stdout[-20000:]
    record(
        "history: gpu_record ran a minute and exited 0",
        code == 0,
        f"exit {code}, {len(samples)} samples",
    )
    matched = mismatched = 0
    details = []
    for index, epoch, util, memory, temperature, power in samples:
        smi = readings.get(epoch)
        if not smi or index >= len(smi):
            continue
        row = smi[index]
        ok = (
            close(row["memory.used"], memory, 2)
            and close(row["temperature.gpu"], temperature, 2)
            and close(row["utilization.gpu"], util, 10)
            and close(row["power.draw"], power, 15)
        )
        matched += ok
        mismatched += not ok
        if not ok:
            details.append(f"{epoch}/{index}: ours {(util, memory, temperature, power)} smi {row}")
    record(
        "history: samples match nvidia-smi at their tick (memory +-2 MiB, temp +-2 C, "
        "util +-10, power +-15 W)",
        matched >= 10 and mismatched == 0,
        f"{matched} matched, {mismatched} not {details[:2]}",
    )
    try:
        body = json.loads(result.stdout)
        filled = sum(v is not None for s in body["series"] for v in s["used_memory_mb"])
        ok = result.returncode == 0 and filled >= 10
        detail = (
            f"{len(body['series'])} series, {filled} buckets with data, "
            f"step {body['step_seconds']} s"
        )
    except (ValueError, KeyError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {result.stdout[-200:]} {result.stderr[-200:]}"
    record("history: the API answers the recorded minute", ok, detail)


def check_other_endpoints(port: int, devices: dict[str, Any]) -> None:
    base = f"http://127.0.0.1:{port}/api/gpu"
    first = devices["devices"][0]
    status, by_uuid = get(f"{base}/devices/{first['uuid']}")
    record(
        "devices/<uuid> answers the same GPU",
        status == 200 and by_uuid["index"] == 0,
        f"{status}, index {by_uuid.get('index')}",
    )
    status, text = fetch_text(f"{base}/metrics")
    raw["metrics"] = text
    try:
        from prometheus_client.parser import text_string_to_metric_families

        samples = {
            (s.name, s.labels.get("gpu")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        ok = (
            status == 200
            and samples[("gpu_monitor_up", None)] == 1
            and samples[("gpu_monitor_memory_total_bytes", "0")]
            == first["total_memory_mb"] * 1048576
        )
        detail = f"{status}, {len(samples)} samples, up={samples.get(('gpu_monitor_up', None))}"
    except Exception as exc:  # prometheus_client missing or output unparsable
        ok, detail = False, f"{status}: {type(exc).__name__}: {exc}"
    record("metrics parse with prometheus_client and match the API", ok, detail)
    status, html = fetch_text(f"{base}/dashboard/")
    record("dashboard page shows the GPU", status == 200 and first["name"] in html, f"{status}")


def check_gunicorn_preload() -> None:
    port = free_port()
    log = OUT / "gunicorn.log"
    cmd = [
        PY,
        "-m",
        "gunicorn",
        "example_project.wsgi",
        "--preload",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
        "--access-logformat",
        "ACCESS %(p)s %(s)s %(B)s",
    ]
    server = start(cmd, port, log)
    latencies: list[float] = []

    def one(_: int) -> tuple[int, int]:
        t0 = time.perf_counter()
        status, body = get(f"http://127.0.0.1:{port}/api/gpu/devices")
        latencies.append(time.perf_counter() - t0)
        return status, body["count"]

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(200)))
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(10)
    access = [line.split() for line in log.read_text().splitlines() if line.startswith("ACCESS")]
    pids = Counter(fields[1] for fields in access if fields[2] == "200")
    real = all(status == 200 and count >= 1 for status, count in answers)
    record(
        "gunicorn --preload 2 workers: every answer has GPUs",
        real,
        f"{sum(c >= 1 for _, c in answers)}/{len(answers)} answers with count >= 1",
    )
    record(
        "gunicorn --preload 2 workers: both workers served",
        len(pids) == 2,
        f"requests per worker pid: {dict(pids)}",
    )
    latencies.sort()
    raw["gunicorn_latency_ms"] = {
        "p50": 1000 * latencies[len(latencies) // 2],
        "p99": 1000 * latencies[int(len(latencies) * 0.99)],
    }
    record(
        "GET devices latency on the real GPU (8 concurrent, info)",
        True,
        "p50 {p50:.1f} ms, p99 {p99:.1f} ms".format(**raw["gunicorn_latency_ms"]),
    )


def median_walls(commands: dict[str, list[str]], runs: int = 10) -> dict[str, float | None]:
    """Median wall time of each command over interleaved rounds; None if it failed."""
    times, failures = interleaved_wall_times(commands, runs)
    if failures:
        raw["timing_errors"] = failures
    return {n: None if n in failures else statistics.median(t) for n, t in times.items()}


def check_command_speed() -> None:
    commands = {
        "manage.py version": [PY, "manage.py", "version"],
        "manage.py gpu_devices --json": [PY, "manage.py", "gpu_devices", "--json"],
        "nvidia-smi --query-gpu": [
            "nvidia-smi",
            "--query-gpu=index,name,memory.used,memory.total,temperature.gpu,utilization.gpu",
            "--format=csv",
        ],
        "gpustat --json": [PY, "-m", "gpustat", "--json"],
        "nvitop --once": [PY, "-m", "nvitop", "--once"],
        # Floors, to tell what no Django command and no Python tool can go below here.
        "empty Django project, version (floor)": [PY, "-c", DJANGO_FLOOR],
        "python: import pynvml, init, query (floor)": [PY, "-c", PYNVML_FLOOR],
    }
    timings = median_walls(commands)
    raw["timings_s"] = timings
    for name, seconds in timings.items():
        record(
            f"median wall time (10 interleaved runs): {name}",
            seconds is not None,
            "failed" if seconds is None else f"{seconds:.3f} s",
        )
    ours = timings["manage.py gpu_devices --json"]
    theirs = timings["gpustat --json"]
    record(
        "gpu_devices --json faster than gpustat --json",
        ours is not None and theirs is not None and ours < theirs,
        "n/a" if ours is None or theirs is None else f"ratio ours/gpustat = {ours / theirs:.2f}",
    )
    version = timings["manage.py version"]
    record(
        "gpu_devices --json / manage.py version <= 1.05",
        ours is not None and version is not None and ours / version <= 1.05,
        "n/a" if ours is None or not version else f"{ours / version:.2f}",
    )
    nvitop = timings["nvitop --once"]
    if ours is not None and nvitop:
        # Information beside the floor below: an empty Django project alone took longer
        # than nvitop --once on the H200, so no manage.py command can beat it there.
        record("gpu_devices / nvitop --once (info)", True, f"{ours / nvitop:.2f}")
    floor = timings["empty Django project, version (floor)"]
    if ours is not None and floor:
        record("gpu_devices / empty Django project (info)", True, f"{ours / floor:.2f}")
    if floor and nvitop:
        # Above 1, no manage.py command of any project can beat nvitop on this machine.
        record("empty Django project / nvitop --once (info)", True, f"{floor / nvitop:.2f}")


def show_command_output() -> None:
    for args in (["gpu_devices"], ["gpu_devices", "--wide"], ["gpu_devices", "-p"]):
        result = run([PY, "manage.py", *args])
        print(result.stdout, flush=True)
        raw[" ".join(args)] = result.stdout
        record(
            f"manage.py {' '.join(args)} exit status",
            result.returncode == 0,
            f"{result.returncode} {result.stderr.strip()[-200:]}",
        )


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    if not shutil.which("nvidia-smi"):
        record("nvidia-smi present", False, "nvidia-smi not found: this check needs a GPU machine")
    else:
        print(run(["nvidia-smi", "-L"]).stdout, flush=True)
        for step in (
            show_command_output,
            check_integration_tests,
            check_server_against_smi,
            check_field_values_path,
            check_processes_against_smi,
            check_history_minute,
            time_nvml_calls,
            check_gunicorn_preload,
            check_command_speed,
        ):
            try:
                step()
            except Exception as exc:  # one broken step must not hide the others
                record(step.__name__, False, f"{type(exc).__name__}: {exc}")
    width = max(len(name) for name, _, _ in results)
    table = [
        f"| {'check'.ljust(width)} | result | detail |",
        f"|{'-' * (width + 2)}|--------|--------|",
    ]
    table += [
        f"| {name.ljust(width)} | {'PASS' if ok else 'FAIL'}   | {detail} |"
        for name, ok, detail in results
    ]
    print("\n" + "\n".join(table))
    (OUT / "gpu_check.md").write_text("\n".join(table) + "\n")
    (OUT / "gpu_check.json").write_text(
        json.dumps({"results": results, "raw": raw}, indent=1, default=str)
    )
    failed = sum(not ok for _, ok, _ in results)
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
