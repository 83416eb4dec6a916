"""GET api/gpu/metrics: Prometheus exposition, checked by prometheus_client and promtool."""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import prometheus_client
import psutil
import pytest
from django.test import Client, override_settings
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from gpu_monitor import host, metrics, plugins
from gpu_monitor.manager import GPUManager

GPU0 = {
    "gpu": "0",
    "uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772",
    "name": "NVIDIA H100 80GB HBM3",
}


def scrape(client: Client) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/api/gpu/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_metrics_of_healthy_gpus(fake_nvml: ModuleType, client: Client) -> None:
    samples = scrape(client)

    assert samples["gpu_monitor_up"] == [({}, 1.0)]
    assert samples["gpu_monitor_devices"] == [({}, 2.0)]
    assert samples["gpu_monitor_driver_info"] == [
        (
            {
                "driver_version": "580.159.04",
                "cuda_driver_version": "13.0",
                "nvml_version": "13.580.159.04",
            },
            1.0,
        )
    ]
    first = {name: values[0] for name, values in samples.items() if values[0][0].get("gpu") == "0"}
    assert first["gpu_monitor_device_available"] == (GPU0, 1.0)
    assert first["gpu_monitor_memory_total_bytes"] == (GPU0, 81559 * 1048576)
    assert first["gpu_monitor_memory_used_bytes"] == (GPU0, 0.0)
    assert first["gpu_monitor_memory_free_bytes"] == (GPU0, 81079 * 1048576)
    assert first["gpu_monitor_utilization_ratio"] == (GPU0, 0.0)
    assert first["gpu_monitor_temperature_celsius"] == (GPU0, 34.0)
    assert first["gpu_monitor_power_draw_watts"] == (GPU0, 71.07)
    assert first["gpu_monitor_power_limit_watts"] == (GPU0, 700.0)
    assert first["gpu_monitor_sm_clock_hertz"] == (GPU0, 345e6)
    assert first["gpu_monitor_memory_clock_hertz"] == (GPU0, 2619e6)
    assert first["gpu_monitor_performance_state"] == (GPU0, 0.0)
    assert len(samples["gpu_monitor_temperature_celsius"]) == 2


def test_ratios_are_fractions(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[0].utilization_gpu = 87
    fake_nvml.STATE.gpus[0].utilization_memory = 42

    samples = scrape(client)

    assert samples["gpu_monitor_utilization_ratio"][0] == (GPU0, 0.87)
    assert samples["gpu_monitor_memory_utilization_ratio"][0] == (GPU0, 0.42)


def test_fan_speed_is_a_ratio_of_the_percent_nvml_gives(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="fan")
    fake_nvml.STATE.gpus[1].fan_speed = 100

    samples = scrape(client)

    assert fake_nvml.FAN_PERCENT == 38
    gpu1 = {**GPU0, "gpu": "1", "uuid": fake_nvml.STATE.gpus[1].uuid}
    assert samples["gpu_monitor_fan_speed_ratio"] == [(GPU0, 0.38), (gpu1, 1.0)]


def test_unsupported_field_has_no_series(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[1].errors["temperature"] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    samples = scrape(client)

    assert "gpu_monitor_fan_speed_ratio" not in samples  # the H100 has no fan: not 0
    assert [labels["gpu"] for labels, _ in samples["gpu_monitor_temperature_celsius"]] == ["0"]


def test_lost_gpu_is_unavailable_with_no_other_series(
    fake_nvml: ModuleType, client: Client
) -> None:
    fake_nvml.configure(gpus=2, scenario="lost")

    samples = scrape(client)

    lost = {"gpu": "1", "uuid": "", "name": "Unknown GPU"}
    assert (lost, 0.0) in samples["gpu_monitor_device_available"]
    assert all(
        labels.get("gpu") != "1"
        for name, values in samples.items()
        if name != "gpu_monitor_device_available"
        for labels, _ in values
    )


def test_without_nvml_up_is_0(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.init_error = fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED

    samples = scrape(client)

    assert samples["gpu_monitor_up"] == [({}, 0.0)]
    assert samples["gpu_monitor_devices"] == [({}, 0.0)]
    assert "gpu_monitor_driver_info" not in samples
    assert "gpu_monitor_device_available" not in samples


@pytest.mark.parametrize("scenario", ["healthy", "lost", "no_nvml", "mig", "load"])
def test_promtool_finds_nothing_wrong(fake_nvml: ModuleType, client: Client, scenario: str) -> None:
    fake_nvml.configure(gpus=2, scenario=scenario)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"

    body = client.get("/api/gpu/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b""


def test_nothing_is_registered_globally(fake_nvml: ModuleType, client: Client) -> None:
    scrape(client)

    names = {
        sample.name for family in prometheus_client.REGISTRY.collect() for sample in family.samples
    }
    assert not any(name.startswith("gpu_monitor") for name in names)


def test_plain_text_accept_is_served(fake_nvml: ModuleType, client: Client) -> None:
    prometheus_accept = (
        "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    for accept in ("text/plain", prometheus_accept):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response.content.startswith(b"# HELP gpu_monitor_up")


def test_without_prometheus_client_is_501(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "gpu_monitor.metrics", raising=False)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)

    response = client.get("/api/gpu/metrics", HTTP_ACCEPT="application/json")
    text = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 501
    assert response.json() == {
        "detail": "Prometheus metrics need the prometheus_client package: "
        "pip install gpu-monitor[prometheus]"
    }
    assert text.status_code == 501
    assert text.content.startswith(b"Prometheus metrics need the prometheus_client package")


def test_metrics_follow_the_permission_settings(fake_nvml: ModuleType, client: Client) -> None:
    locked = {
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    }
    with override_settings(GPU_MONITOR=locked):
        response = client.get("/api/gpu/metrics", HTTP_ACCEPT="text/plain")

    assert response.status_code == 401
    assert response.content == b"Authentication credentials were not provided.\n"


@pytest.mark.django_db
def test_prometheus_with_basic_auth_gets_metrics(fake_nvml: ModuleType, client: Client) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("prometheus", password="scrape-pass")
    locked = {
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    }
    with override_settings(GPU_MONITOR=locked):
        response = client.get(
            "/api/gpu/metrics", HTTP_AUTHORIZATION="Basic cHJvbWV0aGV1czpzY3JhcGUtcGFzcw=="
        )

    assert response.status_code == 200


def test_example_alert_rules_are_valid() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    rules = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"

    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert b"SUCCESS: 13 rules found" in result.stdout


def test_alert_rules_fire_on_failing_hardware_and_only_then() -> None:
    """promtool test rules: series that fire the ECC, remap and slowdown alerts, and
    series (corrected errors, software power cap, a short slowdown) that must not."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    docs = Path(__file__).resolve().parents[2] / "docs"

    result = subprocess.run(
        [promtool, "test", "rules", "prometheus-alerts.test.yml"],
        cwd=docs,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert b"SUCCESS" in result.stdout


def test_metrics_from_the_fake_fire_the_ecc_alert(fake_nvml: ModuleType, client: Client) -> None:
    """The exposition of a GPU with an uncorrectable ECC error, fed to promtool's rule
    tests, fires GPUUncorrectableECCErrors: the rule matches the names we export."""
    promtool = shutil.which("promtool")
    assert promtool
    fake_nvml.STATE.gpus[1].ecc_uncorrected_volatile = 1
    fake_nvml.STATE.gpus[0].remapped_rows = (0, 1, 1, 0)
    series = []
    for family in text_string_to_metric_families(client.get("/api/gpu/metrics").content.decode()):
        for sample in family.samples:
            if sample.name in ("gpu_monitor_ecc_errors_total", "gpu_monitor_remapped_rows_pending"):
                pairs = sorted({**sample.labels, "instance": "n1"}.items())
                labels = ",".join(f'{k}="{v}"' for k, v in pairs)
                series.append((f"{sample.name}{{{labels}}}", sample.value))
    docs = Path(__file__).resolve().parents[2] / "docs"
    lines = [
        f"rule_files: [{docs / 'prometheus-alerts.yml'}]",
        "tests:",
        "  - interval: 1m",
        "    input_series:",
        *[f"      - series: '{name}'\n        values: '{value:g}x3'" for name, value in series],
        "    alert_rule_test:",
        "      - eval_time: 2m",
        "        alertname: GPUUncorrectableECCErrors",
        "        exp_alerts:",
        "          - exp_labels: {severity: critical, gpu: '1', type: uncorrected,",
        "                         scope: volatile, uuid: GPU-3a34af56-e2e8-164a-8e46-000000000001,",
        "                         name: NVIDIA H100 80GB HBM3, instance: n1}",
        "            exp_annotations:",
        "              summary: GPU 1 on n1 has 1 uncorrectable ECC error(s)",
        "              description: 'Uncorrected memory errors since the driver loaded: drain the",
        "                jobs and check the GPU (row remapping, XID 48/63/64).'",
        "      - eval_time: 2m",
        "        alertname: GPURowRemapPending",
        "        exp_alerts:",
        "          - exp_labels: {severity: warning, gpu: '0', instance: n1,",
        "                         uuid: GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772,",
        "                         name: NVIDIA H100 80GB HBM3}",
        "            exp_annotations:",
        "              summary: GPU 0 on n1 has a row remap pending",
        "              description: 'A GPU reset (or reboot) applies it; until then the faulty",
        "                row stays in use.'",
    ]
    test_file = Path(tmp := __import__("tempfile").mkdtemp()) / "test.yml"
    test_file.write_text("\n".join(lines) + "\n")

    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, timeout=60, check=False
    )
    shutil.rmtree(tmp)

    assert len(series) == 10  # 4 ECC counters x 2 GPUs, pending x 2
    assert result.returncode == 0, result.stdout + result.stderr


def test_health_series(fake_nvml: ModuleType, client: Client) -> None:
    gpu = fake_nvml.STATE.gpus[0]
    gpu.ecc_corrected_volatile, gpu.ecc_uncorrected_aggregate = 3, 1
    gpu.remapped_rows = (2, 1, 1, 0)
    gpu.clocks_event_reasons = 0x4 | 0x40 | 0x400  # sw_power_cap, hw_thermal, unknown bit
    gpu.encoder_utilization, gpu.decoder_utilization = 25, 50

    samples = scrape(client)

    def of(name: str, **labels: str) -> list[float]:
        return [
            value
            for got, value in samples.get(name, [])
            if got.get("gpu") == "0" and all(got.get(k) == v for k, v in labels.items())
        ]

    assert of("gpu_monitor_ecc_errors_total", type="corrected", scope="volatile") == [3]
    assert of("gpu_monitor_ecc_errors_total", type="uncorrected", scope="volatile") == [0]
    assert of("gpu_monitor_ecc_errors_total", type="uncorrected", scope="aggregate") == [1]
    assert of("gpu_monitor_remapped_rows_total", type="correctable") == [2]
    assert of("gpu_monitor_remapped_rows_total", type="uncorrectable") == [1]
    assert of("gpu_monitor_remapped_rows_pending") == [1]
    assert of("gpu_monitor_remapped_rows_failed") == [0]
    active = {
        labels["reason"]: value
        for labels, value in samples["gpu_monitor_clocks_event_reason_active"]
        if labels["gpu"] == "0"
    }
    assert active == {
        "gpu_idle": 0,
        "applications_clocks_setting": 0,
        "sw_power_cap": 1,
        "hw_slowdown": 0,
        "sync_boost": 0,
        "sw_thermal_slowdown": 0,
        "hw_thermal_slowdown": 1,
        "hw_power_brake_slowdown": 0,
        "display_clock_setting": 0,
    }  # one series per known reason; the unknown bit is in the API, not a series
    assert of("gpu_monitor_encoder_utilization_ratio") == [0.25]
    assert of("gpu_monitor_decoder_utilization_ratio") == [0.5]
    assert of("gpu_monitor_mig_mode") == [0]
    assert "gpu_monitor_mig_memory_total_bytes" not in samples


def test_unsupported_health_fields_have_no_series(fake_nvml: ModuleType, client: Client) -> None:
    for gpu in fake_nvml.STATE.gpus:
        gpu.errors.update(
            {
                query: fake_nvml.NVML_ERROR_NOT_SUPPORTED
                for query in (
                    "ecc_errors",
                    "remapped_rows",
                    "clocks_event_reasons",
                    "encoder",
                    "mig_mode",
                )
            }
        )

    samples = scrape(client)

    for name in (
        "gpu_monitor_ecc_errors_total",
        "gpu_monitor_remapped_rows_total",
        "gpu_monitor_remapped_rows_pending",
        "gpu_monitor_clocks_event_reason_active",
        "gpu_monitor_encoder_utilization_ratio",
        "gpu_monitor_mig_mode",
    ):
        assert name not in samples, name
    assert "gpu_monitor_decoder_utilization_ratio" in samples


def test_mig_series(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")

    samples = scrape(client)

    assert samples["gpu_monitor_mig_mode"] == [
        ({"gpu": "0", "uuid": "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772", "name": "NVIDIA H200"}, 1)
    ]
    totals = {
        (labels["mig_uuid"][-2:], labels["gpu_instance_id"], labels["compute_instance_id"]): value
        for labels, value in samples["gpu_monitor_mig_memory_total_bytes"]
    }
    assert totals == {
        ("00", "2", "0"): 71424 * 1048576,
        ("01", "2", "1"): 71424 * 1048576,
        ("02", "3", "0"): 33280 * 1048576,
        ("03", "9", "0"): 16384 * 1048576,
        ("04", "10", "0"): 16384 * 1048576,
    }
    used = [value for _, value in samples["gpu_monitor_mig_memory_used_bytes"]]
    assert used == [v * 1048576 for v in (16925, 16925, 17, 9, 9)]
    assert "gpu_monitor_utilization_ratio" not in samples  # N/A on a MIG-enabled GPU


def test_a_scrape_counts_gpus_once(fake_nvml: ModuleType, client: Client) -> None:
    scrape(client)
    fake_nvml.CALLS.clear()

    scrape(client)

    assert fake_nvml.CALLS["nvmlDeviceGetCount"] == 1
    assert fake_nvml.CALLS["nvmlDeviceGetHandleByIndex"] == 2


def test_user_memory_is_off_by_default(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=1, scenario="load")

    assert "gpu_monitor_user_memory_used_bytes" not in scrape(client)
    assert fake_nvml.CALLS["nvmlDeviceGetComputeRunningProcesses"] == 0


def test_user_memory_sums_per_user_never_per_pid(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "CHILD_NAMESPACE", False)
    mib = 1048576
    fake_nvml.STATE.gpus[0].processes = [
        fake_nvml.FakeProcess(os.getpid(), 100 * mib),
        fake_nvml.FakeProcess(os.getppid(), 50 * mib),
        fake_nvml.FakeProcess(4242424, 7 * mib),  # gone: its user is unknown
        fake_nvml.FakeProcess(4242425, None),  # no memory: not counted
    ]
    fake_nvml.STATE.gpus[1].processes = [fake_nvml.FakeProcess(os.getpid(), 30 * mib)]
    me = getpass.getuser()
    assert psutil.Process(os.getppid()).username() == me

    with override_settings(GPU_MONITOR={"METRICS_USER_MEMORY": True}):
        samples = scrape(client)

    uuid0, uuid1 = GPU0["uuid"], "GPU-3a34af56-e2e8-164a-8e46-000000000001"
    assert samples["gpu_monitor_user_memory_used_bytes"] == [
        ({"gpu": "0", "uuid": uuid0, "user": ""}, 7 * mib),
        ({"gpu": "0", "uuid": uuid0, "user": me}, 150 * mib),
        ({"gpu": "1", "uuid": uuid1, "user": me}, 30 * mib),
    ]
    assert not any("pid" in labels for labels, _ in samples["gpu_monitor_user_memory_used_bytes"])


def test_user_memory_passes_promtool(fake_nvml: ModuleType, client: Client) -> None:
    promtool = shutil.which("promtool")
    assert promtool
    fake_nvml.configure(gpus=2, scenario="load")
    with override_settings(GPU_MONITOR={"METRICS_USER_MEMORY": True}):
        body = client.get("/api/gpu/metrics").content

    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )

    assert b"gpu_monitor_user_memory_used_bytes" in body
    assert result.returncode == 0, result.stdout + result.stderr


def test_energy_counter_and_max_clocks(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.STATE.gpus[1].energy_mj += 1500  # 1.5 J more on GPU 1

    samples = scrape(client)

    gpu1 = {**GPU0, "gpu": "1", "uuid": fake_nvml.STATE.gpus[1].uuid}
    assert samples["gpu_monitor_energy_joules_total"] == [
        (GPU0, 42_983_136.0),  # the fake's 42,983,136,000 mJ
        (gpu1, 42_983_137.5),
    ]
    assert samples["gpu_monitor_sm_clock_max_hertz"][0] == (GPU0, 1980e6)
    assert samples["gpu_monitor_memory_clock_max_hertz"][0] == (GPU0, 2619e6)


def test_h200_memory_clock_max(fake_nvml: ModuleType, client: Client) -> None:
    fake_nvml.configure(gpus=1, scenario="mig")

    samples = scrape(client)

    assert [value for _, value in samples["gpu_monitor_memory_clock_max_hertz"]] == [3201e6]


def test_new_fields_cost_three_nvml_calls_per_gpu(fake_nvml: ModuleType, client: Client) -> None:
    scrape(client)
    fake_nvml.CALLS.clear()

    scrape(client)

    assert fake_nvml.CALLS["nvmlDeviceGetTotalEnergyConsumption"] == 2
    assert fake_nvml.CALLS["nvmlDeviceGetMaxClockInfo"] == 4


def test_unsupported_energy_and_max_clocks_have_no_series(
    fake_nvml: ModuleType, client: Client
) -> None:
    for query in ("energy", "clock_max_sm"):
        fake_nvml.STATE.gpus[0].errors[query] = fake_nvml.NVML_ERROR_NOT_SUPPORTED

    samples = scrape(client)
    device = client.get("/api/gpu/devices/0").json()

    assert [labels["gpu"] for labels, _ in samples["gpu_monitor_energy_joules_total"]] == ["1"]
    assert [labels["gpu"] for labels, _ in samples["gpu_monitor_sm_clock_max_hertz"]] == ["1"]
    assert len(samples["gpu_monitor_memory_clock_max_hertz"]) == 2
    assert device["energy_consumed_j"] is None
    assert device["field_errors"]["energy_consumed_j"] == "Not Supported"
    assert device["field_errors"]["sm_clock_max_mhz"] == "Not Supported"


def test_max_clocks_are_asked_by_their_types(fake_nvml: ModuleType) -> None:
    """Four different maximum clocks: each field must come from its own clock type."""
    gpu = fake_nvml.STATE.gpus[0]
    gpu.clock_max_graphics, gpu.clock_max_sm = 1410, 1755
    gpu.clock_max_mem, gpu.clock_max_video = 2619, 1545

    device = GPUManager().get_devices()[0]

    assert (device.sm_clock_max_mhz, device.memory_clock_max_mhz) == (1755, 2619)
    assert device.field_errors == {
        "fan_speed_percent": "Not Supported",
        "retired_pages_pending": "Not Supported",
    }


def test_retired_pages_pending_series(fake_nvml: ModuleType, client: Client) -> None:
    gpu = fake_nvml.STATE.gpus[0]
    del gpu.errors["retired_pages"]  # a GPU before Ampere reports it
    gpu.retired_pages_pending = 1

    samples = scrape(client)

    assert samples["gpu_monitor_retired_pages_pending"] == [(GPU0, 1.0)]  # H100 GPU 1: none


class FineCollector:
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("sub_app_fine", "A sub-app's series", value=1)


class BrokenCollector:
    """Yields one family, then raises: neither family may reach the scrape."""

    broken = True

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("sub_app_half", "Half of a broken answer", value=1)
        if BrokenCollector.broken:
            raise RuntimeError("the sub-app's database went away")
        yield GaugeMetricFamily("sub_app_whole", "The rest of it", value=1)


@pytest.fixture
def sub_app_collectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sub-apps' collectors, a broken one first, and no remembered failure."""

    def declared() -> list[tuple[str, object]]:
        return [("broken", BrokenCollector), ("fine", FineCollector)]

    monkeypatch.setattr(plugins, "collectors", declared)
    monkeypatch.setattr(metrics, "_failing", set())
    monkeypatch.setattr(BrokenCollector, "broken", True)


def test_a_sub_app_collector_that_raises_fails_alone(
    fake_nvml: ModuleType, client: Client, sub_app_collectors: None
) -> None:
    samples = scrape(client)

    assert samples["gpu_monitor_up"] == [({}, 1.0)]
    assert samples["sub_app_fine"] == [({}, 1.0)]
    assert "sub_app_half" not in samples and "sub_app_whole" not in samples
    assert samples["gpu_monitor_scrape_collector_success"] == [
        ({"collector": "broken"}, 0.0),
        ({"collector": "fine"}, 1.0),
    ]


def test_the_collectors_series_come_last(
    fake_nvml: ModuleType, client: Client, sub_app_collectors: None
) -> None:
    BrokenCollector.broken = False
    text = client.get("/api/gpu/metrics").content.decode()

    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert names[-4:] == [
        "sub_app_half",
        "sub_app_whole",
        "sub_app_fine",
        "gpu_monitor_scrape_collector_success",
    ]
    assert names[0] == "gpu_monitor_up"


def test_a_failing_collector_is_logged_once_a_streak(
    fake_nvml: ModuleType,
    client: Client,
    sub_app_collectors: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_monitor.metrics")

    scrape(client)
    scrape(client)
    BrokenCollector.broken = False
    answered = scrape(client)
    scrape(client)
    BrokenCollector.broken = True
    scrape(client)

    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    failed = (
        "ERROR",
        "The broken collector failed: its series are left out of the metrics until it "
        "answers again",
    )
    assert logged == [failed, ("INFO", "The broken collector answers again."), failed]
    assert caplog.records[0].exc_info is not None  # with the traceback
    assert answered["sub_app_whole"] == [({}, 1.0)]


def test_a_collector_that_does_not_import_fails_alone(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Declared:
        name = "gpu_monitor.gone"
        gpu_monitor = plugins.SubApp(collector="gpu_monitor.gone.metrics.GoneCollector")

    monkeypatch.setattr(plugins, "sub_apps", lambda: [(Declared, Declared.gpu_monitor)])
    monkeypatch.setattr(metrics, "_failing", set())

    samples = scrape(client)

    assert samples["gpu_monitor_scrape_collector_success"] == [({"collector": "gone"}, 0.0)]
    assert samples["gpu_monitor_up"] == [({}, 1.0)]


def test_without_sub_app_collectors_there_is_no_success_series(
    fake_nvml: ModuleType, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugins, "collectors", list)

    samples = scrape(client)

    assert "gpu_monitor_scrape_collector_success" not in samples
    assert "gpu_monitor_up" in samples


def test_a_failing_collector_fires_its_alert(
    fake_nvml: ModuleType, client: Client, sub_app_collectors: None, tmp_path: Path
) -> None:
    """The scraped success series, fed to promtool's rule tests, fire
    GPUMonitorCollectorFailing for the broken collector only."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    series = [
        (
            f'gpu_monitor_scrape_collector_success{{collector="{labels["collector"]}",'
            f'instance="n1",job="gpu_monitor"}}',
            value,
        )
        for labels, value in scrape(client)["gpu_monitor_scrape_collector_success"]
    ]
    docs = Path(__file__).resolve().parents[2] / "docs"
    lines = [
        f"rule_files: [{docs / 'prometheus-alerts.yml'}]",
        "tests:",
        "  - interval: 1m",
        "    input_series:",
        *[f"      - series: '{name}'\n        values: '{value:g}x10'" for name, value in series],
        "    alert_rule_test:",
        "      - eval_time: 4m",
        "        alertname: GPUMonitorCollectorFailing",
        "        exp_alerts: []",
        "      - eval_time: 6m",
        "        alertname: GPUMonitorCollectorFailing",
        "        exp_alerts:",
        "          - exp_labels: {severity: critical, collector: broken, instance: n1,",
        "                         job: gpu_monitor}",
        "            exp_annotations:",
        "              summary: The broken metrics of n1 are failing",
        "              description: 'Its series (for the fleet: the hosts'' silence alert) are",
        "                missing; the server log of gpu_monitor.metrics says why (for the",
        "                fleet: usually the database).'",
    ]
    test_file = tmp_path / "test.yml"
    test_file.write_text("\n".join(lines) + "\n")

    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, timeout=60, check=False
    )

    assert len(series) == 2
    assert result.returncode == 0, result.stdout + result.stderr
