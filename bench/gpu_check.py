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
results: list[tuple[str, bool, str]] = []
raw: dict[str, Any] = {}


def record(name: str, ok: bool, detail: str) -> None:
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def run(cmd: list[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def smi_rows() -> list[dict[str, str]]:
    out = run(["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"]).stdout
    keys = SMI_FIELDS.split(",")
    return [
        dict(zip(keys, (v.strip() for v in line.split(",")), strict=True))
        for line in out.strip().splitlines()
    ]


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


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DJANGO_DEBUG": "0"}
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
        _, devices = get(f"http://127.0.0.1:{port}/api/gpu/devices")
        driver_status, driver = get(f"http://127.0.0.1:{port}/api/gpu/driver")
        after = smi_rows()
        check_other_endpoints(port, devices)
    finally:
        server.terminate()
        server.wait(10)
    cuda = smi_cuda_version()
    raw.update(
        smi_before=before, smi_after=after, api_devices=devices, api_driver=driver, smi_cuda=cuda
    )
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
    for peer in ("gpustat --json", "nvitop --once"):
        theirs = timings[peer]
        ok = ours is not None and theirs is not None and ours < theirs
        detail = (
            "n/a"
            if ours is None or theirs is None
            else f"ratio ours/{peer.split()[0]} = {ours / theirs:.2f}"
        )
        record(f"gpu_devices faster than {peer}", ok, detail)
    for name in ("manage.py version", "empty Django project, version (floor)"):
        base = timings[name]
        if ours is not None and base:
            record(f"gpu_devices / {name} (info)", True, f"{ours / base:.2f}")
    floor, nvitop = timings["empty Django project, version (floor)"], timings["nvitop --once"]
    if floor and nvitop:
        # Above 1, no manage.py command of any project can beat nvitop on this machine.
        record("empty Django project / nvitop --once (info)", True, f"{floor / nvitop:.2f}")


def show_command_output() -> None:
    for args in (["gpu_devices"], ["gpu_devices", "--wide"]):
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
