"""The recorded XID errors on ``GET api/gpu/metrics``, for an alert on a new one.

``XidCollector`` counts the ``xid`` events of the last 24 hours per GPU and code, and
the newest one's time, in one aggregate query at scrape time: of this host (the name
``gpu_record`` records as by default) on a node, of every recorded host with
``METRICS_FLEET`` (the central site), so that a fleet's targets never export one host
twice. The history declares it in its ``plugins.SubApp`` (``collector``); the core's
metrics view runs it so that it fails alone. No user name is read.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from django.db.models import Count, Max
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gpu_monitor.conf import conf
from gpu_monitor.history.models import Event
from gpu_monitor.params import moment

WINDOW_SECONDS = 86400
LABELS = ["host", "gpu", "uuid", "xid"]


class XidCollector(Collector):
    """``gpu_monitor_xid_errors{host,gpu,uuid,xid}`` (the events of the last 24 hours)
    and ``gpu_monitor_xid_last_timestamp_seconds`` (the newest one's Unix time) of each
    GPU and code that had one. A database that cannot answer raises: the core's metrics
    view leaves these series out and says
    ``gpu_monitor_scrape_collector_success{collector="history"} 0``."""

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "gpu_monitor_xid_errors",
            "XID errors recorded in the last 24 hours (history events of kind xid)",
            labels=LABELS,
        )
        last = GaugeMetricFamily(
            "gpu_monitor_xid_last_timestamp_seconds",
            "Unix time of the newest XID error of the last 24 hours: time() minus it is "
            "the age of the latest one",
            labels=LABELS,
        )
        for host, index, uuid, xid, count, newest in self.rows(int(time.time())):
            labels = [host, "" if index is None else str(index), uuid, str(xid)]
            errors.add_metric(labels, count)
            last.add_metric(labels, newest)
        yield errors
        yield last

    def rows(self, now: int) -> list[tuple[str, int | None, str, int, int, int]]:
        """Host, GPU index, UUID, code, count and newest epoch of the XID events since
        ``now`` less 24 hours, sorted."""
        # Along the (kind, timestamp) or (host, timestamp) index: the timestamp is the
        # epoch's moment, so the window is GET hosts' (epoch after now less 24 hours).
        events = Event.objects.filter(
            kind=Event.Kind.XID, xid__isnull=False, timestamp__gt=moment(now - WINDOW_SECONDS)
        )
        if conf.get("METRICS_FLEET") is not True:
            events = events.filter(host=socket.gethostname())
        keys = ("host", "gpu_index", "gpu_uuid", "xid")
        return list(
            events.values(*keys)
            .annotate(count=Count("id"), newest=Max("epoch"))
            .order_by(*keys)
            .values_list(*keys, "count", "newest")
        )
