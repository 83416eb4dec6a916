"""Every query of both Grafana dashboards and every recording rule, against a real
Prometheus (Debian's ``prometheus``) scraping two example servers every second.

Server "lost": two H100s of the fake NVML, GPU 1 lost, GPU 0 at 87 % with an
uncorrected ECC error and two processes. Server "mig": GPU 0 the H200 of the MIG capture
(five MIG devices, three processes), GPU 1 an H100 in hardware thermal slowdown. Both
with METRICS_USER_MEMORY on. Prometheus loads docs/prometheus-recording-rules.yml and
the example alerts and evaluates them every second; the variables of the dashboards are
substituted as Grafana's Prometheus datasource does (tests/prometheus/grafana.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prometheus.grafana import (
    ALL,
    RECORDING_RULES,
    ROOT,
    Query,
    interpolate,
    load,
    queries,
    query_result_text,
    variable_regex,
    variables,
)

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="the prometheus binary is missing: apt-get install prometheus (scripts/test does)",
    ),
]
JOB = "gpu_monitor"
ALERTS = ROOT / "docs" / "prometheus-alerts.yml"
NODE = "gpu-monitor-node.json"
FLEET = "gpu-monitor-fleet.json"
# Panels about MIG: no series from a server without a MIG-enabled GPU.
MIG_PANELS = {"MIG memory used per GPU instance", "MIG memory used per slice"}
# Recorded on each server's host (tests/prometheus/seed.py): "lost" had XID 79 on GPU 1 a
# minute ago and XID 13 twice on GPU 0 hours ago, and alice and bob hold its GPU 0 idle
# (one GPU), carol its GPU 1 busy; "mig" had XID 31 on GPU 0 and holds no GPU.
LOST_SEED: dict[str, list[list[Any]]] = {
    "xids": [[1, 79, 60], [0, 13, 3 * 3600], [0, 13, 2 * 3600]],
    "holds": [[0, "alice", 90], [0, "bob", 90], [1, "carol", None]],
}
MIG_SEED: dict[str, list[list[Any]]] = {"xids": [[0, 31, 2 * 3600]], "holds": []}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


class Server:
    """The example project under gunicorn with the fake NVML."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        scenario: str,
        state: dict[str, Any],
        seed: dict[str, list[list[Any]]],
        **env: str,
    ):
        self.port = free_port()
        self.instance = f"127.0.0.1:{self.port}"
        state_file = tmp / f"{name}.json"
        state_file.write_text(json.dumps(state))
        self.log = (tmp / f"{name}.log").open("wb")
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fakes"), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "tests.prometheus.settings_metrics",
            "DJANGO_DEBUG": "0",
            "DJANGO_SQLITE_PATH": str(tmp / f"{name}.sqlite3"),
            "FAKE_NVML_GPUS": "2",
            "FAKE_NVML_SCENARIO": scenario,
            "FAKE_NVML_STATE_FILE": str(state_file),
            **env,
        }
        # The history's XID events and the usage's holds, for their series.
        subprocess.run(
            [sys.executable, "-m", "tests.prometheus.seed", json.dumps(seed)],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=True,
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example_project.wsgi",
                "--bind",
                self.instance,
                "--workers",
                "1",
                "--threads",
                "2",
            ],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()


class Prometheus:
    """Prometheus on a free loopback port, its storage in a temporary folder."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        assert PROMETHEUS is not None
        self.url = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RECORDING_RULES), str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/api/gpu/metrics",
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = tmp / "prometheus.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The series of an instant query (fails on a PromQL error)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = get_json(url)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{expr}: {error.read().decode()}") from error
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()


class Fleet:
    def __init__(self, prometheus: Prometheus, lost: Server, mig: Server) -> None:
        self.prometheus, self.lost, self.mig = prometheus, lost, mig


def wait_until_ready(prometheus: Prometheus, servers: list[Server]) -> None:
    """Both targets up and every recording rule (three levels deep) with a fresh value."""
    deadline = time.monotonic() + 45
    while True:
        for process in (prometheus, *servers):
            if process.process.poll() is not None:
                raise RuntimeError(f"a process of the test stopped: {process.log.name}")
        try:
            urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=5).close()  # else 503
            up = prometheus.query(f'sum(up{{job="{JOB}"}})')
            scrapes = prometheus.query("count_over_time(gpu_monitor_up[1m])")
            rules = prometheus.query("count_over_time(job:gpu_monitor_gpus_unhealthy:sum[1m])")
            # Both scraped 5 times (rate() needs two samples), the last rule of three
            # levels evaluated 3 times since.
            if (
                up
                and up[0]["value"][1] == "2"
                and len(scrapes) == 2
                and min(int(s["value"][1]) for s in scrapes) >= 5
                and rules
                and int(rules[0]["value"][1]) >= 3
            ):
                return
        except OSError:
            pass  # Prometheus still starting: no answer, or 503 until its storage is open
        if time.monotonic() > deadline:
            raise RuntimeError(f"Prometheus not ready in 45 s:\n{prometheus.log_path.read_text()}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("prometheus")
    lost = Server(
        tmp,
        "lost",
        "lost",
        {"0": {"utilization_gpu": 87, "ecc_uncorrected_volatile": 1}},
        LOST_SEED,
        FAKE_NVML_PROCESSES="2",
    )
    mig = Server(tmp, "mig", "mig", {"1": {"clocks_event_reasons": 0x40}}, MIG_SEED)  # HW thermal
    prometheus = Prometheus(tmp, [lost.instance, mig.instance])
    try:
        wait_until_ready(prometheus, [lost, mig])
        yield Fleet(prometheus, lost, mig)
    finally:
        prometheus.stop()
        lost.stop()
        mig.stop()


def run(prometheus: Prometheus, query: Query, chosen: dict[str, Any]) -> list[dict[str, Any]]:
    definitions = variables(load(query.dashboard))
    return prometheus.query(interpolate(query.expr, definitions, chosen))


def test_every_node_panel_has_series_for_every_instance(fleet: Fleet) -> None:
    empty = []
    for server in (fleet.lost, fleet.mig):
        chosen = {"job": JOB, "instance": server.instance, "gpu": ALL}
        for query in queries(NODE):
            if query.panel in MIG_PANELS and server is fleet.lost:
                assert run(fleet.prometheus, query, chosen) == [], query
            elif not run(fleet.prometheus, query, chosen):
                empty.append(f"{server.instance}: {query}")

    assert empty == []


def test_every_fleet_panel_has_series(fleet: Fleet) -> None:
    for chosen in (
        {"job": ALL, "instance": ALL},
        {"job": [JOB], "instance": [fleet.lost.instance, fleet.mig.instance]},
    ):
        assert [q for q in queries(FLEET) if not run(fleet.prometheus, q, chosen)] == []


def gpus_of(result: list[dict[str, Any]]) -> set[str]:
    return {series["metric"]["gpu"] for series in result if "gpu" in series["metric"]}


def test_chosen_gpus_filter_every_node_panel(fleet: Fleet) -> None:
    """One GPU or several, escaped as Grafana does: only those GPUs' series, and with
    both GPUs chosen, exactly the series of All."""
    for server in (fleet.lost, fleet.mig):
        for query in queries(NODE):
            base = {"job": JOB, "instance": server.instance}
            everything = run(fleet.prometheus, query, {**base, "gpu": ALL})
            both = run(fleet.prometheus, query, {**base, "gpu": ["0", "1"]})
            first = run(fleet.prometheus, query, {**base, "gpu": ["0"]})
            key = sorted(json.dumps(s["metric"], sort_keys=True) for s in everything)
            assert sorted(json.dumps(s["metric"], sort_keys=True) for s in both) == key, query
            assert gpus_of(first) <= {"0"}, query


def test_chosen_instance_filters_the_fleet_table(fleet: Fleet) -> None:
    table = [q for q in queries(FLEET) if q.panel == "Every GPU"]
    chosen = {"job": [JOB], "instance": [fleet.mig.instance]}

    for query in table:
        instances = {s["metric"]["instance"] for s in run(fleet.prometheus, query, chosen)}
        assert instances == {fleet.mig.instance}, query


def test_variables_list_jobs_instances_and_gpus(fleet: Fleet) -> None:
    node = variables(load(NODE))
    chosen = {"job": JOB, "instance": fleet.mig.instance}

    jobs = fleet.prometheus.query("gpu_monitor_up")
    gpu_query = node["gpu"]["query"]["query"]
    assert gpu_query.startswith("query_result(") and gpu_query.endswith(")")
    inner = interpolate(gpu_query[len("query_result(") : -1], node, chosen)
    options = [query_result_text(series) for series in fleet.prometheus.query(inner)]
    regex = variable_regex(node["gpu"])
    shown = sorted(
        (m["value"], m["text"]) for m in (regex.search(option) for option in options) if m
    )

    assert node["job"]["query"]["query"] == "label_values(gpu_monitor_up, job)"
    assert {s["metric"]["job"] for s in jobs} == {JOB}
    assert {s["metric"]["instance"] for s in jobs} == {fleet.lost.instance, fleet.mig.instance}
    assert shown == [
        ("0", "NVIDIA H200 #0 (GPU-3a34af56)"),
        ("1", "NVIDIA H100 80GB HBM3 #1 (GPU-3a34af56)"),
    ]


def test_every_recording_rule_has_series(fleet: Fleet) -> None:
    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    names = [rule["record"] for group in groups for rule in group["rules"]]
    counts = {name: len(fleet.prometheus.query(f'{name}{{job="{JOB}"}}')) for name in names}

    assert [name for name, count in counts.items() if count == 0] == []
    assert counts["gpu:gpu_monitor_health:max"] == 4
    assert counts["instance:gpu_monitor_gpus:count"] == 2
    assert counts["job:gpu_monitor_gpus:sum"] == 1


def test_fleet_totals(fleet: Fleet) -> None:
    """4 GPUs: "lost" GPU 0 busy (87 %), GPU 1 lost; "mig" GPU 0 busy (MIG memory in
    use), GPU 1 idle. Unhealthy: the ECC error, the lost GPU, the thermal slowdown."""
    value = fleet.prometheus.value

    assert value('job:gpu_monitor_gpus:sum{job="gpu_monitor"}') == 4
    assert value('job:gpu_monitor_gpus_busy:sum{job="gpu_monitor"}') == 2
    assert value('job:gpu_monitor_gpus_idle:sum{job="gpu_monitor"}') == 1
    assert value('job:gpu_monitor_gpus_lost:sum{job="gpu_monitor"}') == 1
    assert value('job:gpu_monitor_gpus_unhealthy:sum{job="gpu_monitor"}') == 3
    assert value('job:gpu_monitor_utilization_ratio:avg{job="gpu_monitor"}') == pytest.approx(
        0.435  # mean of 87 % and the idle H100's 0 %: the MIG GPU reports none
    )


def test_fleet_table_health_column(fleet: Fleet) -> None:
    """0 healthy, 1 warning (hardware slowdown), 2 critical (lost, uncorrected ECC); each
    row keeps name and uuid, so that Grafana's merge puts it on its GPU's row."""
    health = next(q for q in queries(FLEET) if q.panel == "Every GPU" and q.ref == "G")
    available = next(q for q in queries(FLEET) if q.panel == "Every GPU" and q.ref == "A")
    chosen = {"job": ALL, "instance": ALL}

    rows = {
        (s["metric"]["instance"], s["metric"]["gpu"]): float(s["value"][1])
        for s in run(fleet.prometheus, health, chosen)
    }
    labels = [
        {k: v for k, v in s["metric"].items() if k != "__name__"}
        for s in run(fleet.prometheus, available, chosen)
    ]

    assert rows == {
        (fleet.lost.instance, "0"): 2,
        (fleet.lost.instance, "1"): 2,
        (fleet.mig.instance, "0"): 0,
        (fleet.mig.instance, "1"): 1,
    }
    assert sorted(
        json.dumps(s["metric"], sort_keys=True) for s in run(fleet.prometheus, health, chosen)
    ) == sorted(json.dumps(metric, sort_keys=True) for metric in labels)


def test_user_memory_per_user_across_the_fleet(fleet: Fleet) -> None:
    result = fleet.prometheus.query(
        'job_user:gpu_monitor_user_memory_used_bytes:sum{job="gpu_monitor"}'
    )
    raw = fleet.prometheus.value('sum(gpu_monitor_user_memory_used_bytes{job="gpu_monitor"})')

    assert result
    assert sum(float(s["value"][1]) for s in result) == raw
    # The MIG capture's three processes (pids not on this machine: user "") hold 16,890 MiB.
    assert raw >= (2194 + 1170 + 13526) * 1048576


def test_example_alerts_fire_on_the_fleets_failures(fleet: Fleet) -> None:
    """docs/prometheus-alerts.yml on the same series: the uncorrected ECC error fires at
    once, the lost GPU and the slowdown are pending (their ``for:`` has not passed)."""
    alerts = get_json(f"{fleet.prometheus.url}/api/v1/alerts")["data"]["alerts"]

    assert sorted(
        (
            a["labels"]["alertname"],
            a["labels"]["instance"],
            a["labels"].get("gpu", ""),
            a["labels"]["severity"],
            a["state"],
        )
        for a in alerts
    ) == sorted(
        [
            ("GPUHardwareSlowdown", fleet.mig.instance, "1", "warning", "pending"),
            ("GPULost", fleet.lost.instance, "1", "critical", "pending"),
            ("GPUUncorrectableECCErrors", fleet.lost.instance, "0", "critical", "firing"),
            ("GPUXidError", fleet.lost.instance, "1", "critical", "firing"),  # XID 79
            ("GPUIdleHeld", fleet.lost.instance, "", "warning", "pending"),
        ]
    )


def test_xid_and_idle_held_series_of_each_server(fleet: Fleet) -> None:
    """Each server exports its own host's recorded XID errors (per GPU and code) and
    GPUs held idle (two users on one GPU: 1), every collector answering, no user label."""
    query = fleet.prometheus.query

    def values(expr: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(s["metric"].get(k, "") for k in ("instance", "gpu", "xid")): float(s["value"][1])
            for s in query(expr)
        }

    assert values("gpu_monitor_xid_errors") == {
        (fleet.lost.instance, "0", "13"): 2,
        (fleet.lost.instance, "1", "79"): 1,
        (fleet.mig.instance, "0", "31"): 1,
    }
    assert values("gpu_monitor_idle_held_gpus") == {
        (fleet.lost.instance, "", ""): 1,
        (fleet.mig.instance, "", ""): 0,
    }
    success = query("gpu_monitor_scrape_collector_success")
    assert sorted((s["metric"]["collector"], s["value"][1]) for s in success) == sorted(
        (collector, "1") for collector in ("history", "fleet", "usage") for _ in range(2)
    )
    assert query('{__name__=~"gpu_monitor_(xid_.*|idle_held_gpus)", user!=""}') == []
