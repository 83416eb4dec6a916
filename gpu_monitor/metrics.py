"""Prometheus exposition of the GPUs, through the official ``prometheus_client``.

Needs the optional extra ``gpu-monitor[prometheus]``. A collector queries NVML at scrape
time into a registry made for that scrape: no background thread, nothing registered in
prometheus_client's global default registry. Units follow Prometheus conventions (bytes,
watts, celsius, hertz, ratios 0-1); a field the GPU does not support has no series.

Sub-apps add series of their own through their declaration (``plugins.SubApp.collector``,
the dotted path of a ``Collector`` class that takes no argument), collected after the
GPUs' (the core imports none of them). Each fails alone, as node_exporter's collectors:
one that raises is logged (once until it answers again) and its series are left out,
the rest of the scrape answers, and ``gpu_monitor_scrape_collector_success{collector}``
says which failed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gpu_monitor import host, plugins
from gpu_monitor.conf import conf
from gpu_monitor.manager import MIB, GPUManager, NVMLUnavailableError
from gpu_monitor.manager.health import CLOCKS_EVENT_REASONS
from gpu_monitor.types import GPUDevice

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABELS = ["gpu", "uuid", "name"]

# name, help, value of a device (None: no series)
DEVICE_METRICS: list[tuple[str, str, Callable[[GPUDevice], float | None]]] = [
    (
        "memory_total_bytes",
        "Total memory (nvidia-smi memory.total)",
        lambda d: _scale(d.total_memory_mb, MIB),
    ),
    (
        "memory_used_bytes",
        "Used memory (nvidia-smi memory.used)",
        lambda d: _scale(d.used_memory_mb, MIB),
    ),
    (
        "memory_free_bytes",
        "Free memory (nvidia-smi memory.free)",
        lambda d: _scale(d.free_memory_mb, MIB),
    ),
    ("utilization_ratio", "GPU utilisation, 0 to 1", lambda d: _scale(d.utilization_percent, 0.01)),
    (
        "memory_utilization_ratio",
        "Memory controller utilisation, 0 to 1",
        lambda d: _scale(d.memory_utilization_percent, 0.01),
    ),
    ("temperature_celsius", "GPU core temperature", lambda d: d.temperature_c),
    ("power_draw_watts", "Power draw (nvidia-smi power.draw)", lambda d: d.power_draw_w),
    ("power_limit_watts", "Enforced power limit", lambda d: d.power_limit_w),
    ("fan_speed_ratio", "Fan speed, 0 to 1", lambda d: _scale(d.fan_speed_percent, 0.01)),
    ("sm_clock_hertz", "SM clock", lambda d: _scale(d.sm_clock_mhz, 1_000_000)),
    ("memory_clock_hertz", "Memory clock", lambda d: _scale(d.memory_clock_mhz, 1_000_000)),
    (
        "sm_clock_max_hertz",
        "Maximum SM clock (nvidia-smi clocks.max.sm)",
        lambda d: _scale(d.sm_clock_max_mhz, 1_000_000),
    ),
    (
        "memory_clock_max_hertz",
        "Maximum memory clock (nvidia-smi clocks.max.memory)",
        lambda d: _scale(d.memory_clock_max_mhz, 1_000_000),
    ),
    (
        "performance_state",
        "Performance state: 0 (P0, maximum) to 15 (P15, minimum)",
        lambda d: int(d.performance_state[1:]) if d.performance_state else None,
    ),
    (
        "encoder_utilization_ratio",
        "Video encoder utilisation, 0 to 1",
        lambda d: _scale(d.encoder_utilization_percent, 0.01),
    ),
    (
        "decoder_utilization_ratio",
        "Video decoder utilisation, 0 to 1",
        lambda d: _scale(d.decoder_utilization_percent, 0.01),
    ),
    (
        "remapped_rows_pending",
        "1 when a row remap is pending (applied at the next GPU reset)",
        lambda d: _flag(d.remapped_rows_pending),
    ),
    (
        "remapped_rows_failed",
        "1 when a row remap has failed",
        lambda d: _flag(d.remapped_rows_failure),
    ),
    (
        "retired_pages_pending",
        "1 when retired pages are pending (GPUs before Ampere; applied at the next reset)",
        lambda d: _flag(d.retired_pages_pending),
    ),
    (
        "mig_mode",
        "1 when MIG is enabled (current mode), 0 when disabled",
        lambda d: None if d.mig_mode is None else float(d.mig_mode == "enabled"),
    ),
]
# (type, scope) -> the device's counter
ECC_COUNTERS: list[tuple[str, str, Callable[[GPUDevice], int | None]]] = [
    ("corrected", "volatile", lambda d: d.ecc_errors_corrected_volatile),
    ("uncorrected", "volatile", lambda d: d.ecc_errors_uncorrected_volatile),
    ("corrected", "aggregate", lambda d: d.ecc_errors_corrected_aggregate),
    ("uncorrected", "aggregate", lambda d: d.ecc_errors_uncorrected_aggregate),
]
REMAP_COUNTERS: list[tuple[str, Callable[[GPUDevice], int | None]]] = [
    ("correctable", lambda d: d.remapped_rows_correctable),
    ("uncorrectable", lambda d: d.remapped_rows_uncorrectable),
]
MIG_LABELS = ["gpu", "uuid", "mig_uuid", "gpu_instance_id", "compute_instance_id"]


def _scale(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


class GPUCollector(Collector):
    """Reads every GPU from the manager on each ``collect()`` (each scrape)."""

    def __init__(self, manager: GPUManager) -> None:
        self.manager = manager

    def collect(self) -> Iterator[Metric]:
        status, devices = self.manager.get_status_and_devices()
        yield GaugeMetricFamily(
            "gpu_monitor_up",
            "1 when NVML is available in this process, else 0",
            value=1 if status.error_message is None else 0,
        )
        yield GaugeMetricFamily(
            "gpu_monitor_devices", "Number of GPUs NVML sees", value=status.device_count
        )
        try:
            driver = self.manager.get_driver_info()
        except NVMLUnavailableError:
            pass
        else:
            info = InfoMetricFamily(
                "gpu_monitor_driver",
                "NVIDIA driver, CUDA driver API and NVML versions",
                labels=["driver_version", "cuda_driver_version", "nvml_version"],
            )
            info.add_metric(
                [driver.driver_version, driver.cuda_driver_version, driver.nvml_version], {}
            )
            yield info
        available = GaugeMetricFamily(
            "gpu_monitor_device_available",
            "1 when the GPU answers, 0 when it is lost or broken",
            labels=LABELS,
        )
        families = {
            name: GaugeMetricFamily(f"gpu_monitor_{name}", text, labels=LABELS)
            for name, text, _ in DEVICE_METRICS
        }
        for device in devices:
            labels = [str(device.index), device.uuid or "", device.name]
            available.add_metric(labels, 1 if device.is_available else 0)
            for name, _, value_of in DEVICE_METRICS:
                value = value_of(device)
                if value is not None:
                    families[name].add_metric(labels, value)
        yield available
        yield from families.values()
        yield energy_family(devices)
        yield from health_families(devices)
        yield mig_memory_family(devices, "total")
        yield mig_memory_family(devices, "used")
        if conf.get("METRICS_USER_MEMORY") is True:
            yield self.user_memory_family()

    def user_memory_family(self) -> Metric:
        """GPU memory summed per user on each GPU: never a series per pid (pids churn, and
        each would be a new series). A process whose user the host cannot tell counts
        for user ""."""
        used: dict[tuple[str, str, str], int] = defaultdict(int)
        for process in host.processes(self.manager, command_line=False).processes:
            if process.used_memory_mb is not None:
                key = (str(process.gpu_index), process.gpu_uuid or "", process.username or "")
                used[key] += process.used_memory_mb
        family = GaugeMetricFamily(
            "gpu_monitor_user_memory_used_bytes",
            "GPU memory used by a user's processes (nvidia-smi --query-compute-apps, summed)",
            labels=["gpu", "uuid", "user"],
        )
        for labels, mib in sorted(used.items()):
            family.add_metric(list(labels), mib * MIB)
        return family


def energy_family(devices: list[GPUDevice]) -> Metric:
    """``gpu_monitor_energy_joules_total``: energy used since the driver was loaded."""
    family = CounterMetricFamily(
        "gpu_monitor_energy_joules",
        "Energy used since the driver was last loaded (nvmlDeviceGetTotalEnergyConsumption)",
        labels=LABELS,
    )
    for device in devices:
        if device.energy_consumed_j is not None:
            family.add_metric(
                [str(device.index), device.uuid or "", device.name], device.energy_consumed_j
            )
    return family


def health_families(devices: list[GPUDevice]) -> Iterator[Metric]:
    """ECC and remapped-row counters, and one 0/1 series per known clock event reason."""
    ecc = CounterMetricFamily(
        "gpu_monitor_ecc_errors",
        "ECC errors (nvidia-smi ecc.errors.*.total); volatile ones reset when the driver loads",
        labels=[*LABELS, "type", "scope"],
    )
    rows = CounterMetricFamily(
        "gpu_monitor_remapped_rows",
        "Rows remapped after memory errors (nvidia-smi remapped_rows.*)",
        labels=[*LABELS, "type"],
    )
    reasons = GaugeMetricFamily(
        "gpu_monitor_clocks_event_reason_active",
        "1 while the reason holds the clocks down (nvidia-smi clocks_event_reasons.*)",
        labels=[*LABELS, "reason"],
    )
    for device in devices:
        labels = [str(device.index), device.uuid or "", device.name]
        for kind, scope, counter in ECC_COUNTERS:
            value = counter(device)
            if value is not None:
                ecc.add_metric([*labels, kind, scope], value)
        for kind, remapped in REMAP_COUNTERS:
            value = remapped(device)
            if value is not None:
                rows.add_metric([*labels, kind], value)
        if device.clocks_event_reasons is not None:
            for reason in CLOCKS_EVENT_REASONS.values():
                reasons.add_metric([*labels, reason], reason in device.clocks_event_reasons)
    yield ecc
    yield rows
    yield reasons


def mig_memory_family(devices: list[GPUDevice], kind: str) -> Metric:
    """``gpu_monitor_mig_memory_{kind}_bytes`` of every MIG device."""
    family = GaugeMetricFamily(
        f"gpu_monitor_mig_memory_{kind}_bytes",
        f"Memory {kind} of a MIG device's GPU instance (nvidia-smi's MIG table)",
        labels=MIG_LABELS,
    )
    for device in devices:
        for mig in device.mig_devices:
            value = mig.total_memory_mb if kind == "total" else mig.used_memory_mb
            if value is not None:
                labels = [
                    str(device.index),
                    device.uuid or "",
                    mig.uuid or "",
                    _label(mig.gpu_instance_id),
                    _label(mig.compute_instance_id),
                ]
                family.add_metric(labels, value * MIB)
    return family


def _label(value: int | None) -> str:
    return "" if value is None else str(value)


class SubAppCollector(Collector):
    """A sub-app's collector that fails alone: ``collect()`` builds every family of the
    wrapped collector before it yields one, so a failure half-way leaves out all of
    them, never a part; ``success`` says how it went."""

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self.name = name
        self.factory = factory
        self.success = False

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self.factory().collect())
        except Exception:
            families = []
            _failed(self.name)
        else:
            self.success = True
            _answered(self.name)
        yield from families


class ScrapeCollector(Collector):
    """``gpu_monitor_scrape_collector_success`` of each sub-app's collector; registered
    after them, so it reads how their scrape went. (No ``..._duration_seconds`` as
    node_exporter's: a value that changes at every scrape would keep the exposition from
    being compared byte for byte.)"""

    def __init__(self, collectors: list[SubAppCollector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        if not self.collectors:
            return
        success = GaugeMetricFamily(
            "gpu_monitor_scrape_collector_success",
            "1 when the sub-app's collector answered this scrape, 0 when it failed (its "
            "series are left out; the server log says why)",
            labels=["collector"],
        )
        for collector in self.collectors:
            success.add_metric([collector.name], float(collector.success))
        yield success


_failing: set[str] = set()  # the collectors whose last scrape failed: log once a streak
_failing_lock = threading.Lock()


def _failed(name: str) -> None:
    with _failing_lock:
        first = name not in _failing
        _failing.add(name)
    if first:
        logger.exception(
            "The %s collector failed: its series are left out of the metrics until it "
            "answers again",
            name,
        )


def _answered(name: str) -> None:
    with _failing_lock:
        was_failing = name in _failing
        _failing.discard(name)
    if was_failing:
        logger.info("The %s collector answers again.", name)


def sub_app_collectors() -> list[SubAppCollector]:
    """A collector of each installed sub-app that declares one, in ``INSTALLED_APPS``
    order, each made to fail alone."""
    return [SubAppCollector(name, factory) for name, factory in plugins.collectors()]


def render(manager: GPUManager) -> bytes:
    """The text exposition of one scrape: the GPUs, the sub-apps' series, then how each
    sub-app's collector went."""
    registry = CollectorRegistry(auto_describe=False)
    sub_apps = sub_app_collectors()
    for collector in [GPUCollector(manager), *sub_apps, ScrapeCollector(sub_apps)]:
        registry.register(collector)
    return generate_latest(registry)
