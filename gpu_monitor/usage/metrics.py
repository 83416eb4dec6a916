"""The GPUs held idle now on ``GET api/gpu/metrics``, for an alert on them.

``IdleHeldCollector`` counts the GPUs that ``GET usage/idle`` lists (``report.idle_holds``
at ``USAGE_IDLE_MINUTES``), each GPU once however many users hold it: of this host (the
name ``gpu_record`` records as by default) on a node, of every host with a hold with
``METRICS_FLEET`` (the central site), so that a fleet's targets never export one host
twice. The usage sub-app declares it in its ``plugins.SubApp`` (``collector``); the
core's metrics view runs it so that it fails alone. No user name leaves it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from django.db import router
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gpu_monitor.conf import conf
from gpu_monitor.usage.models import Hold
from gpu_monitor.usage.report import idle_holds


class IdleHeldCollector(Collector):
    """``gpu_monitor_idle_held_gpus{host}``: 0 for a host where none is, so the series
    exists (this host; with ``METRICS_FLEET``, every host with a hold row). A database
    that cannot answer raises: the core's metrics view leaves it out and says
    ``gpu_monitor_scrape_collector_success{collector="usage"} 0``."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "gpu_monitor_idle_held_gpus",
            "GPUs held idle now (GET usage/idle at USAGE_IDLE_MINUTES; a GPU two users "
            "hold counts once)",
            labels=["host"],
        )
        for host, count in sorted(self.counts().items()):
            family.add_metric([host], count)
        yield family

    def counts(self) -> dict[str, int]:
        """The distinct GPUs held idle per host, 0 included: two queries."""
        fleet = conf.get("METRICS_FLEET") is True
        host = None if fleet else socket.gethostname()
        idle = idle_holds(minutes=conf.get("USAGE_IDLE_MINUTES"), host=host).order_by()
        if host is not None:
            hosts = [host]
        else:
            held = Hold.objects.using(router.db_for_read(Hold))
            hosts = list(held.order_by().values_list("host", flat=True).distinct())
        counts = dict.fromkeys(hosts, 0)
        gpus = idle.values("host").annotate(gpus=Count("gpu_uuid", distinct=True))
        for row in gpus:
            counts[row["host"]] = row["gpus"]
        return counts
