"""gpu_monitor_idle_held_gpus{host} on GET api/gpu/metrics: the GPUs GET usage/idle lists
at USAGE_IDLE_MINUTES, each once, of this host on a node (0 when none) and of every host
with a hold with METRICS_FLEET; a database that cannot answer leaves out this series
alone; no user label."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from gpu_monitor import metrics, plugins
from gpu_monitor.usage.metrics import IdleHeldCollector
from gpu_monitor.usage.models import Hold
from tests.usage.conftest import Script

pytestmark = pytest.mark.django_db
IDLE = "gpu_monitor_idle_held_gpus"
SUCCESS = "gpu_monitor_scrape_collector_success"
THIS = socket.gethostname()
Samples = dict[str, list[tuple[dict[str, str], float]]]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def hold(user: str, *, gpu: int = 0, host: str = THIS, idle_for: int | None = 3700) -> None:
    now = int(time.time())
    Hold.objects.create(
        host=host,
        gpu_uuid=f"GPU-{host}-{gpu}",
        gpu_index=gpu,
        user=user,
        held_since=now - 7200,
        idle_since=None if idle_for is None else now - idle_for,
        last_epoch=now - 5,
        interval_seconds=10,
        memory_mb=512,
    )


def scrape(client: Client) -> Samples:
    response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200, response.content
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_distinct_gpus_of_this_host_held_idle(fake_nvml: ModuleType, client: Client) -> None:
    hold("alice", gpu=0)
    hold("bob", gpu=0)  # two users on one GPU: it counts once
    hold("alice", gpu=1)
    hold("carol", gpu=2, idle_for=1800)  # idle for 30 minutes only
    hold("dave", gpu=3, idle_for=None)  # busy
    hold("erin", gpu=0, host="node-b")  # another host's: not this node's

    assert scrape(client)[IDLE] == [({"host": THIS}, 2.0)]
    with override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": 30}):
        assert scrape(client)[IDLE] == [({"host": THIS}, 3.0)]


def test_0_for_this_host_when_none(fake_nvml: ModuleType, client: Client) -> None:
    samples = scrape(client)

    assert samples[IDLE] == [({"host": THIS}, 0.0)]
    assert ({"collector": "usage"}, 1.0) in samples[SUCCESS]


def test_every_host_with_a_hold_with_metrics_fleet(fake_nvml: ModuleType, client: Client) -> None:
    hold("alice", gpu=0, host="node-a")
    hold("bob", gpu=1, host="node-a")
    hold("carol", gpu=0, host="node-b", idle_for=None)

    with override_settings(GPU_MONITOR={"METRICS_FLEET": True}):
        samples = scrape(client)

    assert samples[IDLE] == [({"host": "node-a"}, 2.0), ({"host": "node-b"}, 0.0)]


def test_the_rule_of_get_usage_idle_after_recorded_ticks(
    script: Script, client: Client, admin_client: Client
) -> None:
    script.host = THIS
    script.epoch = int(time.time()) // 10 * 10 - 20 * 60 - 10
    script.users[0] = [("alice", 700), ("bob", 100)]
    script.users[1] = [("alice", 300)]
    script.utilization(0, 0)
    script.utilization(1, 0)
    script.tick(120)  # 20 minutes idle, up to now

    for minutes, gpus in ((20, 2.0), (21, 0.0)):
        with override_settings(GPU_MONITOR={"USAGE_IDLE_MINUTES": minutes}):
            listed = admin_client.get("/api/gpu/usage/idle").json()["gpus"]
            assert scrape(client)[IDLE] == [({"host": THIS}, gpus)]
        assert len({gpu["gpu_uuid"] for gpu in listed}) == gpus


def test_a_database_that_cannot_answer_leaves_out_only_the_idle_series(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("no such table: gpu_monitor_usage_hold")

    monkeypatch.setattr(metrics, "_failing", set())
    monkeypatch.setattr(Hold.objects, "using", fail)

    samples = scrape(client)

    assert IDLE not in samples
    assert ({"collector": "usage"}, 0.0) in samples[SUCCESS]
    assert ({"collector": "history"}, 1.0) in samples[SUCCESS]
    assert samples["gpu_monitor_up"] == [({}, 1.0)]


def test_no_user_label_and_no_user_name(fake_nvml: ModuleType, client: Client) -> None:
    hold("alice", gpu=0)

    with override_settings(GPU_MONITOR={"METRICS_FLEET": True}):
        body = client.get("/api/gpu/metrics").content.decode()

    assert f'{IDLE}{{host="{THIS}"}} 1.0' in body
    assert "alice" not in body
    assert "user=" not in body


def test_the_usage_declares_its_collector_in_its_app_config() -> None:
    declared = dict(plugins.collectors())

    assert isinstance(declared["usage"](), IdleHeldCollector)


def test_the_scraped_series_fire_the_idle_held_alert(
    fake_nvml: ModuleType, client: Client, tmp_path: Path
) -> None:
    """The exposition, fed to promtool's rule tests, fires GPUIdleHeld after its `for`:
    the rule matches the name and label we export."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    hold("alice", gpu=0)
    hold("bob", gpu=1)
    [(found, value)] = re.findall(
        rf"^{IDLE}{{(.*)}} (\S+)$", client.get("/api/gpu/metrics").content.decode(), re.MULTILINE
    )
    test_file = tmp_path / "test.yml"
    test_file.write_text(
        "\n".join(
            [
                f"rule_files: [{DOCS / 'prometheus-alerts.yml'}]",
                "tests:",
                "  - interval: 1m",
                "    input_series:",
                f'      - series: \'{IDLE}{{instance="n1",job="gpu_monitor",{found}}}\'',
                f"        values: '{value}x30'",
                "    alert_rule_test:",
                "      - eval_time: 14m",
                "        alertname: GPUIdleHeld",
                "        exp_alerts: []",
                "      - eval_time: 16m",
                "        alertname: GPUIdleHeld",
                "        exp_alerts:",
                "          - exp_labels: {severity: warning, instance: n1, job: gpu_monitor,",
                f'                         host: "{THIS}"}}',
                "            exp_annotations:",
                f'              summary: "2 GPU(s) of {THIS} held idle"',
                "              description: 'Processes hold them idle (at or below",
                "                USAGE_IDLE_PERCENT) for USAGE_IDLE_MINUTES or more; GET",
                "                api/gpu/usage/idle?host=" + THIS,
                "                says who (manage.py gpu_notify tells them).'",
            ]
        )
        + "\n"
    )

    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
