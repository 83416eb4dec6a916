"""The fleet's series on GET api/gpu/metrics (METRICS_FLEET): last tick of each host,
hosts per state by the rules of GET hosts, on a central site with or without NVML."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from gpu_monitor import metrics, plugins
from gpu_monitor.fleet.metrics import FleetCollector
from gpu_monitor.fleet.models import HostState
from gpu_monitor.history.recorder import Recorder
from tests.fleet.conftest import NOW, Clock

pytestmark = pytest.mark.django_db
Record = Callable[..., Recorder]
Samples = dict[str, list[tuple[dict[str, str], float]]]
ON = {"METRICS_FLEET": True}
LAST_SEEN = "gpu_monitor_fleet_host_last_seen_timestamp_seconds"
INTERVAL = "gpu_monitor_fleet_host_interval_seconds"
HOSTS = "gpu_monitor_fleet_hosts"
METRICS_LOGGER = "gpu_monitor.metrics"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def scrape(client: Client, **headers: Any) -> Samples:
    response = client.get("/api/gpu/metrics", **headers)
    assert response.status_code == 200, response.content
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def per_state(samples: Samples) -> dict[str, float]:
    return {labels["state"]: value for labels, value in samples[HOSTS]}


def record_three_states(record: Record) -> None:
    """node-a up, node-b stale (4 intervals missed), node-c down (FLEET_DOWN_AFTER)."""
    record("node-a", NOW)
    record("node-b", NOW - 40)
    record("node-c", NOW - 600)


def test_off_by_default(fake_nvml: ModuleType, client: Client, record: Record) -> None:
    record("node-a")

    samples = scrape(client)

    assert samples["gpu_monitor_up"] == [({}, 1.0)]
    assert not [name for name in samples if name.startswith("gpu_monitor_fleet")]


def test_last_seen_is_each_hosts_last_tick(
    fake_nvml: ModuleType, client: Client, record: Record, clock: Clock
) -> None:
    record("node-b", NOW - 30)
    record("node-a", NOW - 20)
    record("node-a", NOW - 10)

    with override_settings(GPU_MONITOR=ON):
        samples = scrape(client)

    assert samples[LAST_SEEN] == [
        ({"host": "node-a"}, float(NOW - 10)),
        ({"host": "node-b"}, float(NOW - 30)),
    ]


def test_hosts_per_state_follow_the_rules_of_get_hosts(
    fake_nvml: ModuleType, client: Client, record: Record, clock: Clock
) -> None:
    record_three_states(record)

    with override_settings(GPU_MONITOR=ON):
        samples = scrape(client)
        listed = {
            state: client.get(f"/api/gpu/hosts?state={state}").json()["count"]
            for state in ("up", "stale", "down")
        }

    assert per_state(samples) == {"up": 1.0, "stale": 1.0, "down": 1.0}
    assert per_state(samples) == listed


def test_states_move_with_the_clock_and_fleet_down_after(
    fake_nvml: ModuleType, client: Client, record: Record, clock: Clock
) -> None:
    record_three_states(record)
    clock.now = NOW + 31  # node-a misses more than 3 intervals

    with override_settings(GPU_MONITOR={**ON, "FLEET_DOWN_AFTER": 70}):
        samples = scrape(client)

    assert per_state(samples) == {"up": 0.0, "stale": 1.0, "down": 2.0}


def test_every_state_is_there_without_hosts(fake_nvml: ModuleType, client: Client) -> None:
    with override_settings(GPU_MONITOR=ON):
        samples = scrape(client)

    assert per_state(samples) == {"up": 0.0, "stale": 0.0, "down": 0.0}
    assert LAST_SEEN not in samples  # a family without series has no sample


def test_central_site_without_nvml_answers_with_the_fleet(
    fake_nvml: ModuleType, client: Client, record: Record, clock: Clock
) -> None:
    record_three_states(record)  # recorded by the nodes
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND  # the central site

    with override_settings(GPU_MONITOR=ON):
        samples = scrape(client, HTTP_ACCEPT="text/plain")

    assert samples["gpu_monitor_up"] == [({}, 0.0)]
    assert samples["gpu_monitor_devices"] == [({}, 0.0)]
    assert per_state(samples) == {"up": 1.0, "stale": 1.0, "down": 1.0}
    assert len(samples[LAST_SEEN]) == 3


def test_fleet_metrics_follow_the_permission_settings(
    fake_nvml: ModuleType, client: Client, record: Record
) -> None:
    record("node-a")
    locked = {
        **ON,
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    }

    with override_settings(GPU_MONITOR=locked):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 401
    assert b"node-a" not in response.content


def test_misconfigured_settings_fail_closed(
    fake_nvml: ModuleType, client: Client, record: Record
) -> None:
    record("node-a")

    with override_settings(GPU_MONITOR={**ON, "PERMISSION_CLASSES": ["no.such.Class"]}):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 503
    assert response.content.startswith(b"GPU_MONITOR is misconfigured")
    assert b"node-a" not in response.content


def test_a_database_that_cannot_answer_leaves_out_the_fleet_alone_logged_once(
    fake_nvml: ModuleType,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    record: Record,
) -> None:
    """The fleet's collector fails alone: the scrape answers with the GPUs and says
    ``gpu_monitor_scrape_collector_success{collector="fleet"} 0``; the metrics logger
    says so once for the streak, and once that it answers again."""
    record("node-a")
    order_by = HostState.objects.order_by
    broken = [True]

    def fail(*args: Any) -> Any:
        if broken[0]:
            raise OperationalError("no such table: gpu_monitor_fleet_hoststate")
        return order_by(*args)

    monkeypatch.setattr(metrics, "_failing", set())
    monkeypatch.setattr(HostState.objects, "order_by", fail)
    caplog.set_level(logging.INFO, logger=METRICS_LOGGER)

    with override_settings(GPU_MONITOR=ON):
        first = scrape(client, HTTP_ACCEPT="text/plain")
        second = scrape(client)
        broken[0] = False  # the database is back
        back = scrape(client)

    for failed in (first, second):
        assert ({"collector": "fleet"}, 0.0) in failed["gpu_monitor_scrape_collector_success"]
        assert LAST_SEEN not in failed and HOSTS not in failed
        assert failed["gpu_monitor_up"] == [({}, 1.0)]
    assert ({"collector": "fleet"}, 1.0) in back["gpu_monitor_scrape_collector_success"]
    assert [labels["host"] for labels, _ in back[LAST_SEEN]] == ["node-a"]
    logged = [
        (r.levelname, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name == METRICS_LOGGER
    ]
    assert logged == [
        (
            "ERROR",
            "The fleet collector failed: its series are left out of the metrics until it "
            "answers again",
            True,
        ),
        ("INFO", "The fleet collector answers again.", False),
    ]
    # Once in all: the fleet's own module does not log the failure a second time.
    assert [r.name for r in caplog.records if r.levelno >= logging.WARNING] == [METRICS_LOGGER]


def test_the_fleet_declares_its_collector_in_its_app_config() -> None:
    declared = dict(plugins.collectors())

    assert isinstance(declared["fleet"](), FleetCollector)
    assert [c.name for c in metrics.sub_app_collectors()] == ["history", "fleet", "usage"]


def test_promtool_finds_nothing_wrong(
    fake_nvml: ModuleType, client: Client, record: Record, clock: Clock
) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    record_three_states(record)

    with override_settings(GPU_MONITOR=ON):
        body = client.get("/api/gpu/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )

    assert b"gpu_monitor_fleet_hosts" in body
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b""


def test_the_scraped_series_fire_the_silent_host_alert(
    fake_nvml: ModuleType, client: Client, record: Record, clock: Clock, tmp_path: Path
) -> None:
    """The exposition, fed to promtool's rule tests as a central site scraped every
    minute from Unix time 0, fires GPUMonitorHostSilent for the host that stopped
    recording, and only for it (a host recording every 15 min is not silent at 11 min):
    the rule matches the names and labels we export."""
    promtool = shutil.which("promtool")
    assert promtool
    record("node-a", 0)
    record("node-b", 0)
    record("node-c", 0, interval=900)  # its next tick is due at minute 15
    values: dict[tuple[str, str], list[float]] = {}
    for minute in range(16):
        clock.now = minute * 60
        record("node-a", minute * 60)  # node-b stays silent after its first tick
        with override_settings(GPU_MONITOR=ON):
            samples = scrape(client)
        for name in (LAST_SEEN, INTERVAL):
            for labels, value in samples[name]:
                values.setdefault((name, labels["host"]), []).append(value)
    series = [
        f'      - series: \'{name}{{instance="central",job="gpu_monitor",'
        f"host=\"{host}\"}}'\n        values: '{' '.join(f'{v:g}' for v in found)}'"
        for (name, host), found in values.items()
    ]
    test_file = tmp_path / "test.yml"
    test_file.write_text(
        "\n".join(
            [
                f"rule_files: [{DOCS / 'prometheus-alerts.yml'}]",
                "tests:",
                "  - interval: 1m",
                "    input_series:",
                *series,
                "    alert_rule_test:",
                "      - eval_time: 9m",
                "        alertname: GPUMonitorHostSilent",
                "        exp_alerts: []",
                "      - eval_time: 11m",
                "        alertname: GPUMonitorHostSilent",
                "        exp_alerts:",
                "          - exp_labels: {severity: critical, instance: central,",
                "                         job: gpu_monitor, host: node-b}",
                "            exp_annotations:",
                "              summary: Host node-b has recorded nothing for 11m 0s",
                "              description: 'Its gpu_record stopped or cannot reach the",
                "                database (GET api/gpu/hosts shows it stale, then down).'",
            ]
        )
        + "\n"
    )

    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, timeout=60, check=False
    )

    assert values[LAST_SEEN, "node-b"] == values[LAST_SEEN, "node-c"] == [0.0] * 16
    assert values[INTERVAL, "node-c"] == [900.0] * 16
    assert result.returncode == 0, result.stdout + result.stderr
