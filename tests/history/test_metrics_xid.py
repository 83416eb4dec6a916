"""gpu_monitor_xid_errors and gpu_monitor_xid_last_timestamp_seconds on GET api/gpu/metrics:
the history's XID events of the last 24 hours per GPU and code, of this host on a node and
of every host with METRICS_FLEET, in one query; a database that cannot answer leaves out
these series alone."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from gpu_monitor import metrics, plugins
from gpu_monitor.history.metrics import XidCollector
from gpu_monitor.history.models import Event

pytestmark = pytest.mark.django_db
NOW = 1_796_000_000
ERRORS = "gpu_monitor_xid_errors"
LAST = "gpu_monitor_xid_last_timestamp_seconds"
SUCCESS = "gpu_monitor_scrape_collector_success"
THIS = socket.gethostname()
Samples = dict[str, list[tuple[dict[str, str], float]]]
DOCS = Path(__file__).resolve().parents[2] / "docs"
CRITICAL = (
    "The latest one {age} ago: a hardware or driver fault; GET api/gpu/events?host={host} "
    "lists them, gpu_monitor_xid_errors counts those of 24 hours."
)
WARNING = (
    "The latest one {age} ago: often a program''s fault (bad memory access, a kernel "
    "killed); GET api/gpu/events?host={host} lists them."
)


def event(
    epoch: int, *, xid: int | None = 79, gpu: int = 0, host: str = THIS, kind: str = "xid"
) -> None:
    Event.objects.create(
        host=host,
        gpu_uuid=f"GPU-{host}-{gpu}",
        gpu_index=gpu,
        epoch=epoch,
        timestamp=datetime.fromtimestamp(epoch, timezone.utc),
        kind=kind,
        xid=xid,
        message=f"XID {xid}",
    )


def scrape(client: Client) -> Samples:
    with time_machine.travel(NOW, tick=False):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200, response.content
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def labels(host: str, gpu: int, xid: int) -> dict[str, str]:
    return {"host": host, "gpu": str(gpu), "uuid": f"GPU-{host}-{gpu}", "xid": str(xid)}


def test_counts_per_gpu_and_code_with_the_newest_time(
    fake_nvml: ModuleType, client: Client
) -> None:
    event(NOW - 300, xid=79, gpu=0)
    event(NOW - 200, xid=79, gpu=0)
    event(NOW - 100, xid=13, gpu=0)
    event(NOW - 50, xid=79, gpu=1)

    samples = scrape(client)

    assert samples[ERRORS] == [
        (labels(THIS, 0, 13), 1.0),
        (labels(THIS, 0, 79), 2.0),
        (labels(THIS, 1, 79), 1.0),
    ]
    assert samples[LAST] == [
        (labels(THIS, 0, 13), float(NOW - 100)),
        (labels(THIS, 0, 79), float(NOW - 200)),
        (labels(THIS, 1, 79), float(NOW - 50)),
    ]


def test_only_the_last_24_hours_and_only_xid_events(fake_nvml: ModuleType, client: Client) -> None:
    event(NOW - 86400)  # exactly 24 h old: out
    event(NOW - 86399)
    event(NOW - 90000, xid=48)
    event(NOW - 60, kind="gpu_lost", xid=None)
    event(NOW - 30, kind="idle_held", xid=None)
    event(NOW - 20, kind="gpu_recovered", xid=79)  # not an XID event, whatever its code

    samples = scrape(client)

    assert samples[ERRORS] == [(labels(THIS, 0, 79), 1.0)]
    assert samples[LAST] == [(labels(THIS, 0, 79), float(NOW - 86399))]


def test_this_host_only_on_a_node_every_host_with_metrics_fleet(
    fake_nvml: ModuleType, client: Client
) -> None:
    event(NOW - 60, host=THIS)
    event(NOW - 60, host="node-b", xid=48, gpu=3)

    node = scrape(client)
    with override_settings(GPU_MONITOR={"METRICS_FLEET": True}):
        central = scrape(client)

    assert node[ERRORS] == [(labels(THIS, 0, 79), 1.0)]
    assert sorted(central[ERRORS], key=lambda s: s[0]["host"]) == sorted(
        [(labels(THIS, 0, 79), 1.0), (labels("node-b", 3, 48), 1.0)],
        key=lambda s: s[0]["host"],
    )


def test_none_recorded_is_an_empty_family_and_success(
    fake_nvml: ModuleType, client: Client
) -> None:
    event(NOW - 60, host="node-b")  # another host's: not this node's

    samples = scrape(client)

    assert ERRORS not in samples and LAST not in samples
    assert ({"collector": "history"}, 1.0) in samples[SUCCESS]


def test_one_query(fake_nvml: ModuleType) -> None:
    for n in range(5):
        event(NOW - 60 * n, gpu=n % 2, xid=(13, 79)[n % 2])

    with CaptureQueriesContext(connection) as queries, time_machine.travel(NOW, tick=False):
        families = list(XidCollector().collect())

    assert len(queries) == 1
    assert [len(f.samples) for f in families] == [2, 2]


def test_a_database_that_cannot_answer_leaves_out_only_the_xid_series(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    event(NOW - 60)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("no such table: gpu_monitor_history_event")

    monkeypatch.setattr(metrics, "_failing", set())
    monkeypatch.setattr(Event.objects, "filter", fail)

    samples = scrape(client)

    assert ERRORS not in samples and LAST not in samples
    assert ({"collector": "history"}, 0.0) in samples[SUCCESS]
    assert ({"collector": "usage"}, 1.0) in samples[SUCCESS]
    assert samples["gpu_monitor_up"] == [({}, 1.0)]
    assert samples["gpu_monitor_idle_held_gpus"] == [({"host": THIS}, 0.0)]


def test_no_user_label_and_no_user_name(fake_nvml: ModuleType, client: Client) -> None:
    Event.objects.create(
        host=THIS,
        gpu_uuid="GPU-x",
        gpu_index=0,
        epoch=NOW - 60,
        timestamp=datetime.fromtimestamp(NOW - 60, timezone.utc),
        kind="xid",
        xid=31,
        message="XID 31 (MMU fault) in the process of alice",
    )

    with time_machine.travel(NOW, tick=False):
        body = client.get("/api/gpu/metrics").content.decode()

    assert 'xid="31"' in body
    assert "alice" not in body
    assert "user=" not in body


def test_the_history_declares_its_collector_in_its_app_config() -> None:
    declared = dict(plugins.collectors())

    assert isinstance(declared["history"](), XidCollector)


def test_the_scraped_series_fire_the_xid_alert_by_class(
    fake_nvml: ModuleType, client: Client, tmp_path: Path
) -> None:
    """The exposition, fed to promtool's rule tests (where time() starts at Unix time 0),
    fires GPUXidError, critical for XID 79 and a warning for XID 13: the rule matches
    the names and labels we export."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    event(120, xid=79, gpu=0)
    event(60, xid=13, gpu=1)
    with time_machine.travel(300, tick=False):
        body = client.get("/api/gpu/metrics").content.decode()
    series = [
        f'      - series: \'{LAST}{{instance="n1",job="gpu_monitor",{found}}}\'\n'
        f"        values: '{value}x10'"
        for found, value in re.findall(rf"^{LAST}{{(.*)}} (\S+)$", body, re.MULTILINE)
    ]
    alerts = [
        f"          - exp_labels: {{severity: {severity}, instance: n1, job: gpu_monitor, "
        f'host: "{THIS}", gpu: "{gpu}", uuid: GPU-{THIS}-{gpu}, xid: "{xid}"}}\n'
        f"            exp_annotations:\n"
        f'              summary: "XID {xid} on GPU {gpu} of {THIS}"\n'
        f"              description: '{description}'"
        for severity, gpu, xid, description in (
            ("critical", 0, 79, CRITICAL.format(age="3m 0s", host=THIS)),
            ("warning", 1, 13, WARNING.format(age="4m 0s", host=THIS)),
        )
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
                "      - eval_time: 5m",
                "        alertname: GPUXidError",
                "        exp_alerts:",
                *alerts,
            ]
        )
        + "\n"
    )

    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, timeout=60, check=False
    )

    assert len(series) == 2
    assert result.returncode == 0, result.stdout + result.stderr
