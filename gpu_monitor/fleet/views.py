"""GET api/gpu/hosts, hosts/<host> and hosts/<host>/processes: read from the database,
with no GPU and no NVML needed on the server that answers."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor import host as host_details
from gpu_monitor.api import ProcessesAPIView
from gpu_monitor.conf import conf
from gpu_monitor.fleet import hosts
from gpu_monitor.fleet.limits import HostFilters, HostPagination, host_filters
from gpu_monitor.fleet.models import HostState
from gpu_monitor.fleet.schema import host_docs, host_processes_docs, hosts_docs
from gpu_monitor.fleet.serializers import (
    HostDetailSerializer,
    HostProcessesSerializer,
)
from gpu_monitor.fleet.types import HostProcesses
from gpu_monitor.params import iso, name_text, shown
from gpu_monitor.schema import document
from gpu_monitor.stored import MAX_HOST_LENGTH, StoredAPIView

logger = logging.getLogger(__name__)


class FleetAPIView(StoredAPIView):
    """Base of the fleet's views: a database that cannot answer is a JSON 503 that
    names the fleet, logged by this module."""

    database_what = "GPU fleet"
    database_logger = logger


def recorded_host(name: str) -> HostState:
    """The state row of host ``name``; 404 naming it when it never recorded."""
    row = HostState.objects.filter(host=name_text("host", name, MAX_HOST_LENGTH)).first()
    if row is None:
        raise NotFound(f"No host {shown(name)} has recorded (gpu_record --host).")
    return row


def request_filters(request: Request) -> HostFilters:
    """``?state=&problem=&q=&sort=`` of ``request`` (``limits.host_filters``)."""
    params = request.query_params
    return host_filters(
        params.get("state"), params.get("problem"), params.get("q", ""), params.get("sort")
    )


@document("hosts", hosts_docs)
class HostListView(FleetAPIView):
    """Every recorded host, sorted by host (or ``?sort=``), paginated:
    ``?state=&problem=1&q=&sort=``."""

    pagination_class = HostPagination

    def get(self, request: Request) -> Response:
        filters = request_filters(request)
        at = hosts.now()
        rows = hosts.filtered(at, filters)
        paginator = HostPagination()
        page = paginator.page_of(hosts.summary_values(rows), request, self)
        return paginator.get_paginated_response(hosts.summary_items(page, at))


@document("host", host_docs)
class HostDetailView(FleetAPIView):
    """One host's last recorded state: its devices as its own API gave them."""

    def get(self, request: Request, host: str) -> Response:
        detail = hosts.detail(recorded_host(host), hosts.now())
        return Response(HostDetailSerializer(detail).data)


def shown_processes(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored processes as this site may show them: without command lines unless its
    ``PROCESS_COMMAND_LINE`` is True (whatever the node recorded)."""
    if conf.get("PROCESS_COMMAND_LINE"):
        return stored
    return [
        {
            **process,
            "command_line": None,
            "field_errors": {
                **process.get("field_errors", {}),
                "command_line": host_details.HIDDEN,
            },
        }
        for process in stored
    ]


@document("host_processes", host_processes_docs)
class HostProcessListView(ProcessesAPIView, FleetAPIView):
    """The processes a host recorded at its last tick (``gpu_record --processes``);
    behind ``PROCESS_PERMISSION_CLASSES`` like ``processes``."""

    def get(self, request: Request, host: str) -> Response:
        row = recorded_host(host)
        if row.processes is None:
            raise NotFound(
                f"Host {shown(host)} records no processes: run gpu_record --processes there."
            )
        stored: list[dict[str, Any]] = row.processes.get("processes", [])
        found = HostProcesses(
            host=row.host,
            recorded_at=iso(row.epoch),
            processes=hosts.stored_processes(shown_processes(stored)),
            count=len(stored),
            gpu_errors=row.processes.get("gpu_errors", {}),
        )
        return Response(HostProcessesSerializer(found).data)
