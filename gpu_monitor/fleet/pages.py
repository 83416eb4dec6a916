"""The fleet's pages, read from the database only (no GPU, no NVML on the server).

``GET fleet/`` is one tile per recorded host; ``GET fleet/<host>/`` is that host's cards
and charts as the dashboard draws them. Each refreshes itself from its own JSON
(``Accept: application/json`` or ``?format=json``), as the dashboard does.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Max
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor.dashboard import (
    Dashboard,
    DashboardSerializer,
    PageView,
    page_config,
    page_context,
    refresh_interval,
    url_prefix,
)
from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.limits import HostSort, host_filters
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.serializers import HostSummarySerializer
from gpu_monitor.fleet.types import STATES, HostSummary
from gpu_monitor.fleet.views import FleetAPIView, recorded_host, shown_processes
from gpu_monitor.rules import HIGH_PERCENT, HOT_TEMPERATURE_C
from gpu_monitor.stored import from_stored
from gpu_monitor.types import (
    DriverInfo,
    GPUDevice,
    GPUProcess,
    GPUProcessesResponse,
    GPUStatus,
    MIGDevice,
)

logger = logging.getLogger(__name__)
FLEET_INTERVAL_S = 10  # the fleet page's refresh by default: the recorder's default tick
STRIP_MOST_GPUS = 64  # GPUs a tile's strip shows; a host with more shows its first ones
HOST_PLACEHOLDER = "__host__"  # in the host page's URL, replaced by fleet.js


# The page's sort control: each of limits.SORTS, labelled, the page's default first.
SORT_LABELS: dict[HostSort, str] = {
    "problems": "Problems first",
    "host": "Name",
    "last_seen": "Last seen",
}
PAGE_SORT: HostSort = "problems"  # the page's order without ?sort=: the eye finds them


def fleet(at: int, sort: HostSort = PAGE_SORT) -> dict[str, Any]:
    """The fleet page's JSON at time ``at``: ``counts`` (hosts up, stale and down),
    ``problem_hosts`` (hosts with at least one problem), ``count`` and ``hosts`` in the
    order ``sort`` names (``limits.SORTS``; down hosts and hosts with problems first
    by default): each as ``GET hosts`` gives it plus ``gpu_utilization``, each GPU's
    utilisation at its last tick in the order of its devices (None where it gave none).
    One query reads the summary's columns and one value per GPU, never the devices."""
    rows = hosts.selected(at, sort=sort)
    most = min(STRIP_MOST_GPUS, HostState.objects.aggregate(n=Max("gpu_count"))["n"] or 0)
    strip = [f"gpu_{i}" for i in range(most)]
    values = list(
        rows.annotate(
            **{name: F(f"devices__{i}__utilization_percent") for i, name in enumerate(strip)}
        ).values_list(*hosts.SUMMARY_COLUMNS, *strip)
    )
    columns = len(hosts.SUMMARY_COLUMNS)
    items = hosts.summary_items((row[:columns] for row in values), at)
    for item, row in zip(items, values, strict=True):
        item["gpu_utilization"] = list(row[columns : columns + item["gpu_count"]])
    states = Counter(item["state"] for item in items)
    return {
        "counts": {state: states[state] for state in STATES},
        "problem_hosts": sum(1 for item in items if item["problems"]),
        "count": len(items),
        "hosts": items,
    }


class FleetPageView(PageView, FleetAPIView):
    """Base of the fleet's pages: a database that cannot answer is a 503 that names the
    fleet, logged by this module."""

    database_logger = logger


class FleetView(FleetPageView):
    """An HTML page with one tile per recorded host, refreshed in place from its own
    JSON (``fleet``): ``?q=`` fills its filter box, ``?sort=`` orders the tiles (as
    ``GET hosts``' ``sort``; by default ``problems``: down hosts and hosts with problems
    first; 400 for another value), ``?interval=SECONDS`` sets the refresh period
    (default 10, 1 to 3600). Same permission settings as the API."""

    template_name = "gpu_monitor/fleet/fleet.html"

    def get(self, request: Request) -> Response:
        sort = host_filters(sort=request.query_params.get("sort") or PAGE_SORT).sort
        data = fleet(hosts.now(), sort)
        if not self.wants_page(request):
            return Response(data)
        prefix = url_prefix(request)
        params = request.query_params
        config = {
            "fleet": reverse(f"{prefix}fleet"),
            "host_page": reverse(f"{prefix}fleet-host", kwargs={"host": HOST_PLACEHOLDER}),
            "placeholder": HOST_PLACEHOLDER,
            "interval": refresh_interval(params.get("interval"), FLEET_INTERVAL_S),
            "q": params.get("q", ""),
            "sort": sort,
            "page_sort": PAGE_SORT,
            "sorts": [{"value": value, "label": label} for value, label in SORT_LABELS.items()],
            "high_percent": HIGH_PERCENT,
            "hot_temperature_c": HOT_TEMPERATURE_C,
        }
        return Response({"fleet": data, "config": config})


@dataclass(frozen=True)
class HostDashboard(Dashboard):
    """A recorded host's page as JSON: the dashboard's data as the host recorded it
    at its last tick, and its summary (state, last seen)."""

    host: HostSummary


class HostDashboardSerializer(DashboardSerializer):
    """The host page's JSON (``HostDashboard``)."""

    host = HostSummarySerializer(read_only=True)


def recorded_device(data: dict[str, Any]) -> GPUDevice:
    """A stored device (``GET devices``' JSON) as the dataclass, its MIG devices too."""
    migs = [from_stored(MIGDevice, mig) for mig in data.get("mig_devices") or []]
    return from_stored(GPUDevice, data, mig_devices=migs)


def recorded_processes(row: HostState) -> GPUProcessesResponse | None:
    """The processes the host recorded, as this site may show them; None when the host
    records none (``gpu_record`` without ``--processes``)."""
    if row.processes is None:
        return None
    stored: list[dict[str, Any]] = row.processes.get("processes", [])
    listed = [from_stored(GPUProcess, process) for process in shown_processes(stored)]
    return GPUProcessesResponse(listed, len(listed), row.processes.get("gpu_errors", {}))


class FleetHostView(FleetPageView):
    """A recorded host's page: the dashboard's cards and charts, read from the database
    (its last tick, its history and events). 404 naming a host that never recorded, 400
    for a name over 255 characters. Processes only to a viewer who passes
    ``PROCESS_PERMISSION_CLASSES``. ``?interval=`` defaults to the host's interval."""

    template_name = "gpu_monitor/fleet/host.html"

    def error_back_link(self, request: Request) -> tuple[str, str]:
        """The error page's way on (an unknown host's 404): the fleet."""
        return ("Back to the GPU fleet", reverse(f"{url_prefix(request)}fleet"))

    def get(self, request: Request, host: str) -> Response:
        row = recorded_host(host)
        at = hosts.now()
        summary = hosts.summarize(row, at, hosts.xid_counts([row.host], at).get(row.host, 0))
        devices = [recorded_device(data) for data in row.devices]
        status = GPUStatus(
            cuda_available=bool(devices),
            device_count=len(devices),
            error_message=None if devices else "the host recorded no GPU at its last tick",
        )
        driver = from_stored(DriverInfo, row.driver) if row.driver else None
        processes = recorded_processes(row) if self.may_see_processes(request) else None
        if not self.wants_page(request):
            found = HostDashboard(devices, len(devices), status, driver, processes, summary)
            return Response(HostDashboardSerializer(found).data)
        prefix = url_prefix(request)
        config = page_config(
            request,
            reverse(f"{prefix}fleet-host", kwargs={"host": row.host}),
            interval=refresh_interval(request.query_params.get("interval"), row.interval_seconds),
            host=row.host,
        )
        context = page_context(devices, status, driver, processes, config)
        return Response({**context, "host": summary, "fleet_url": reverse(f"{prefix}fleet")})
