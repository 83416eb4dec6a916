"""The fleet's series on the central site's ``GET api/gpu/metrics`` (``METRICS_FLEET``).

When each host last recorded and at what interval, and how many hosts are in each state
by the rules of ``GET hosts`` (``gpu_monitor.fleet.hosts.age_and_state``), read from the
hosts' state rows in one query at scrape time: one alert rule on them catches a node
that went silent. The fleet declares ``FleetCollector`` in its ``plugins.SubApp``
(``collector``); the core's metrics view runs it so that it fails alone.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gpu_monitor.conf import conf
from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.types import STATES


class FleetCollector(Collector):
    """``gpu_monitor_fleet_host_last_seen_timestamp_seconds{host}``,
    ``gpu_monitor_fleet_host_interval_seconds{host}`` and
    ``gpu_monitor_fleet_hosts{state}`` (every state, 0 included) while ``METRICS_FLEET``
    is True; nothing otherwise. A database that cannot answer raises: the core's metrics
    view leaves the fleet's series out, logs it once a failure streak and says
    ``gpu_monitor_scrape_collector_success{collector="fleet"} 0``."""

    def collect(self) -> Iterator[Metric]:
        if conf.get("METRICS_FLEET") is not True:
            return
        at = hosts.now()
        rows = self.rows()
        last_seen = GaugeMetricFamily(
            "gpu_monitor_fleet_host_last_seen_timestamp_seconds",
            "Unix time of the host's last recorded tick (gpu_record --host)",
            labels=["host"],
        )
        interval = GaugeMetricFamily(
            "gpu_monitor_fleet_host_interval_seconds",
            "The host's recording interval (gpu_record --interval): an alert on its silence "
            "scales with it",
            labels=["host"],
        )
        counts = dict.fromkeys(STATES, 0)
        down_after = conf.get("FLEET_DOWN_AFTER")
        for host, epoch, interval_seconds in rows:
            last_seen.add_metric([host], epoch)
            interval.add_metric([host], interval_seconds)
            counts[hosts.age_and_state(epoch, interval_seconds, at, down_after)[1]] += 1
        yield last_seen
        yield interval
        states = GaugeMetricFamily(
            "gpu_monitor_fleet_hosts",
            "Recorded hosts in each state (up, stale, down), as GET hosts reports them",
            labels=["state"],
        )
        for state, count in counts.items():
            states.add_metric([state], count)
        yield states

    def rows(self) -> list[tuple[str, int, int]]:
        """Each host's name, last tick and interval, sorted by host."""
        return list(
            HostState.objects.order_by("host").values_list("host", "epoch", "interval_seconds")
        )
