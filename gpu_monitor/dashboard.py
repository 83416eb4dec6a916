"""The dashboard page: one card per GPU, refreshed in place from its own JSON.

``GET dashboard/`` is the page; with ``Accept: application/json`` or ``?format=json``
it is what the page shows as JSON (devices shaped as ``devices`` with each GPU's
hardware ``problems``, the status, the driver, the processes the viewer may see), which
the page refreshes itself from.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from gpu_monitor import plugins
from gpu_monitor.api import GPUMonitorAPIView, refused_process_permissions
from gpu_monitor.manager import NVMLUnavailableError, get_manager
from gpu_monitor.params import whole_number
from gpu_monitor.rules import (
    HIGH_PERCENT,
    HOT_TEMPERATURE_C,
    PROBLEM_KINDS,
    hardware_problems,
    is_high,
    is_hot,
)
from gpu_monitor.serializers import (
    DriverInfoSerializer,
    GPUDeviceSerializer,
    GPUProcessesResponseSerializer,
    GPUStatusSerializer,
    ReadOnlySerializer,
)
from gpu_monitor.types import (
    DriverInfo,
    GPUDevice,
    GPUProcess,
    GPUProcessesResponse,
    GPUStatus,
    MIGDevice,
)
from gpu_monitor.views import find_processes

DEFAULT_INTERVAL_S = 5
MAX_INTERVAL_S = 3600


@dataclass(frozen=True)
class Dashboard:
    """What the page shows; ``processes`` is None for a viewer who may not see them."""

    devices: list[GPUDevice]
    count: int
    status: GPUStatus
    driver: DriverInfo | None
    processes: GPUProcessesResponse | None


class ProblemSerializer(ReadOnlySerializer):
    """A sign of failing hardware (``gpu_monitor.rules.Problem``)."""

    kind = serializers.ChoiceField(PROBLEM_KINDS, read_only=True)
    badge = serializers.CharField(read_only=True)
    message = serializers.CharField(read_only=True)


class DevicesWithProblemsField(serializers.Field):  # type: ignore[type-arg]
    """GPUs shaped as ``devices`` shows them, each with its hardware ``problems`` by the
    rule the health check uses."""

    def to_representation(self, value: list[GPUDevice]) -> list[dict[str, Any]]:
        return [
            {
                **GPUDeviceSerializer(device).data,
                "problems": ProblemSerializer(hardware_problems(device), many=True).data,
            }
            for device in value
        ]


class DashboardSerializer(ReadOnlySerializer):
    """The dashboard as JSON (``Dashboard``)."""

    devices = DevicesWithProblemsField(read_only=True)
    count = serializers.IntegerField(read_only=True)
    status = GPUStatusSerializer(read_only=True)
    driver = DriverInfoSerializer(read_only=True, allow_null=True)
    processes = GPUProcessesResponseSerializer(read_only=True, allow_null=True)


def whole(value: float) -> int:
    """``value`` rounded half up: ``floor(value + 0.5)``, as page.js's ``whole`` computes
    it on the same float, so that the first render and every refresh say the same."""
    return math.floor(value + 0.5)


def memory_text(used_mb: int | None, total_mb: int | None) -> str:
    """``61170 / 81559 MiB (75%)``; "N/A" when either is unknown or the total is 0 (the
    rule of ``GPUDevice.memory_used_percent``), as page.js's ``memoryText``."""
    if used_mb is None or not total_mb:
        return "N/A"
    return f"{used_mb} / {total_mb} MiB ({whole(100 * used_mb / total_mb)}%)"


def power_text(draw_w: float | None, limit_w: float | None) -> str:
    """``71 W / 700 W`` (no limit: ``71 W``), as page.js's ``powerText``."""
    if draw_w is None:
        return "Power N/A"
    return f"{whole(draw_w)} W" + (f" / {whole(limit_w)} W" if limit_w else "")


def _card(device: GPUDevice, processes: list[GPUProcess] | None = None) -> dict[str, Any]:
    """What a dashboard card shows; dashboard.js formats refreshed data by the same
    rules (page.js's formatters).

    ``processes``: every GPU's processes when the viewer may see them, else None.
    """
    memory_percent = device.memory_used_percent
    return {
        "device": device,
        "memory": memory_text(device.used_memory_mb, device.total_memory_mb),
        "memory_percent": f"{memory_percent or 0:.1f}",
        "memory_high": is_high(memory_percent),
        "utilization_high": is_high(device.utilization_percent),
        "temperature_high": is_hot(device.temperature_c),
        "utilization": "N/A"
        if device.utilization_percent is None
        else f"{device.utilization_percent}%",
        "utilization_percent": device.utilization_percent or 0,
        "utilization_why": device.field_errors.get("utilization_percent", ""),
        "temperature": "N/A" if device.temperature_c is None else f"{device.temperature_c} °C",
        "temperature_percent": min(100, max(0, device.temperature_c or 0)),
        "power": power_text(device.power_draw_w, device.power_limit_w),
        "problems": hardware_problems(device),
        "mig": [_mig_line(mig) for mig in device.mig_devices],
        "processes": None
        if processes is None
        else [_process_line(p, device) for p in processes if p.gpu_index == device.index],
    }


def _mig_line(mig: MIGDevice) -> dict[str, Any]:
    """A MIG slice in a card: its profile (``1g.18gb``, the name after "MIG ") and its
    memory, which is its GPU instance's."""
    memory = "N/A"
    if mig.used_memory_mb is not None and mig.total_memory_mb:
        memory = f"{mig.used_memory_mb} / {mig.total_memory_mb} MiB"
    name = (mig.name or "MIG device").rsplit("MIG ", 1)[-1]
    return {"mig": mig, "name": name, "memory": memory}


def _process_line(process: GPUProcess, device: GPUDevice) -> dict[str, Any]:
    """A process in a card: who, what, and its GPU memory as a share of the card's."""
    used = process.used_memory_mb
    share = 100 * used / device.total_memory_mb if used and device.total_memory_mb else 0
    return {
        "pid": process.pid,
        "user": process.username or "?",
        "name": process.name or "?",
        "memory": "N/A" if used is None else f"{used} MiB",
        "memory_percent": f"{min(100.0, share):.1f}",
    }


def refresh_interval(text: str | None, default: int = DEFAULT_INTERVAL_S) -> int:
    """The refresh interval from ``?interval=`` in seconds, else ``default``: 1 to 3600."""
    seconds = whole_number(text or "")
    return min(MAX_INTERVAL_S, max(1, default if seconds is None else seconds))


DASHBOARD_PAGE = ("Dashboard", "dashboard")
DASHBOARD_TITLE = "GPUs"


def has_nvml() -> bool:
    """Whether the dashboard has something to show: NVML works in this process (read
    without a call to NVML)."""
    return get_manager().error_message is None


def page_links(request: Request, prefix: str | None = None) -> list[dict[str, str]]:
    """The pages' nav: the dashboard, then each installed sub-app's page
    (``plugins.pages()``) that the viewer may open (``Page.may_open``: an anonymous
    viewer sees no link to a page that would refuse them). Only pages with something to
    show: where NVML is unavailable in this process (``has_nvml``) and another page is
    listed (a central site), the dashboard is left out. ``current``: ``page`` on that page,
    ``true`` under it (a fleet host's page). ``prefix``: the URL namespace (``url_prefix``
    of the request by default)."""
    prefix = url_prefix(request) if prefix is None else prefix
    opened = [(p.label, p.url_name) for p in plugins.pages() if p.may_open(request)]
    links = []
    for label, name in (DASHBOARD_PAGE, *opened):
        try:
            url = reverse(f"{prefix}{name}")
        except NoReverseMatch:  # a project that mounts only some of the app's URLs
            continue
        path, base = request.path.rstrip("/"), url.rstrip("/")
        current = "page" if path == base else "true" if path.startswith(f"{base}/") else ""
        links.append({"label": label, "url": url, "current": current, "name": name})
    if len(links) > 1 and links[0]["name"] == DASHBOARD_PAGE[1] and not has_nvml():
        return links[1:]
    return links


def page_title(request: Request) -> str:
    """The name of the page ``request`` is on or under, for its error page's title and
    heading: a sub-app's page by its label (``Page.label``, opened or refused alike),
    else the dashboard's "GPUs"."""
    prefix = url_prefix(request)
    path = request.path.rstrip("/")
    for page in plugins.pages():
        try:
            base = reverse(f"{prefix}{page.url_name}").rstrip("/")
        except NoReverseMatch:
            continue
        if path == base or path.startswith(f"{base}/"):
            return page.label
    return DASHBOARD_TITLE


def sign_in_url(request: Request) -> str | None:
    """``settings.LOGIN_URL`` with ``?next=`` this page, for an anonymous viewer the page
    refused; None when the project has no login page (``LOGIN_URL`` resolves to none)."""
    if getattr(request.user, "is_authenticated", False):
        return None
    login = resolve_url(settings.LOGIN_URL)
    parts = urlsplit(login)
    if not parts.netloc:  # a login page of this site: it must exist
        try:
            resolve(parts.path)
        except Resolver404:
            return None
    query = QueryDict(parts.query, mutable=True)
    query["next"] = request.get_full_path()
    return urlunsplit(parts._replace(query=query.urlencode(safe="/")))


class DashboardRenderer(TemplateHTMLRenderer):
    """The dashboard page; errors as a short page of their own with the status and detail
    (a browser asked for a page). A client that asks for JSON gets DRF's JSON errors.

    Every page gets the nav (``nav``); a page of GPU cards (a ``PageView``) the
    sub-apps' panels (``panels``: ``page_panels``); an error page a way on: ``sign_in``
    (a refused anonymous viewer) and ``back`` (``(label, URL)`` from the view's
    ``error_back_link(request)``, e.g. the fleet from an unknown host's page).
    """

    exception_template_names = ("gpu_monitor/error.html",)

    def get_template_context(
        self, data: Any, renderer_context: Mapping[str, Any]
    ) -> dict[str, Any]:
        context: dict[str, Any] = super().get_template_context(data, renderer_context)
        request: Request = renderer_context["request"]
        context = {**context, "nav": page_links(request)}
        response = renderer_context["response"]
        if response.exception:
            context["page_title"] = page_title(request)
            if response.status_code in (401, 403):
                context["sign_in"] = sign_in_url(request)
            back = getattr(renderer_context.get("view"), "error_back_link", None)
            context["back"] = back(request) if back else None
        elif isinstance(renderer_context.get("view"), PageView):
            context["panels"] = page_panels(request)
        return context


def page_panels(request: Request) -> list[dict[str, Any]]:
    """The sub-apps' panels (``plugins.panels()``) as the page templates include them:
    ``template`` (included in the header with ``part="page"`` and in each card with
    ``part="card"``, the panel's context as ``panel``), ``script`` (a static path, loaded
    after dashboard.js) and ``context`` (what the panel's ``context(request)`` answers)."""
    return [
        {"template": p.template, "script": p.script, "context": p.get_context(request)}
        for p in plugins.panels()
    ]


class PageView(GPUMonitorAPIView):
    """Base of the HTML pages that refresh themselves from their own JSON (the dashboard,
    the fleet's pages): an HTML page, or JSON to a client that asks for it."""

    renderer_classes = (DashboardRenderer, JSONRenderer)
    schema = None  # an HTML page, not an operation of the JSON API

    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        """The allowed methods (``Allow`` header) and no body: never a page without data."""
        return HttpResponse(content_type="text/plain")

    def wants_page(self, request: Request) -> bool:
        """Whether the client asked for the HTML page (not for its JSON)."""
        return isinstance(request.accepted_renderer, DashboardRenderer)

    def may_see_processes(self, request: Request) -> bool:
        """Whether the viewer passes PROCESS_PERMISSION_CLASSES (the page itself needed
        PERMISSION_CLASSES already). A class that fails (logged with its traceback) or
        refuses by raising shows the page without processes, never a 500."""
        try:
            return not refused_process_permissions(request, self)
        except APIException:
            return False


def url_prefix(request: HttpRequest | Request) -> str:
    """``namespace:`` of the app's URLs as this request reached them, for ``reverse``."""
    namespace = request.resolver_match.namespace if request.resolver_match else ""
    return f"{namespace}:" if namespace else ""


def page_config(request: Request, data_url: str, **extra: Any) -> dict[str, Any]:
    """What dashboard.js reads (``gpu-monitor-config``): the JSON it refreshes from
    (``data_url``), the interval, the rules' thresholds, and ``extra`` (``host``: the
    host the page shows, whose history and events a panel reads)."""
    config: dict[str, Any] = {
        "dashboard": data_url,
        "interval": refresh_interval(request.query_params.get("interval")),
        "high_percent": HIGH_PERCENT,
        "hot_temperature_c": HOT_TEMPERATURE_C,
    }
    return {**config, **extra}


def page_context(
    devices: list[GPUDevice],
    status: GPUStatus,
    driver: DriverInfo | None,
    processes: GPUProcessesResponse | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """The context of ``gpu_monitor/dashboard.html`` (and of pages that extend it)."""
    listed = None if processes is None else processes.processes
    return {
        "cards": [_card(device, listed) for device in devices],
        "status": status,
        "driver": driver,
        "show_processes": processes is not None,
        "config": config,
    }


class DashboardView(PageView):
    """An HTML page with one card per GPU, refreshed in place from its own JSON.

    ``?interval=SECONDS`` sets the refresh period (default 5, 1 to 3600). Same
    permission, authentication and throttle settings as the API. A client that asks
    for JSON (``Accept: application/json``, ``?format=json``) gets ``Dashboard`` as
    JSON; a format the view has no renderer for is DRF's 404 (``?format=``) or 406
    (``Accept``).
    """

    template_name = "gpu_monitor/dashboard.html"

    def get(self, request: Request) -> Response:
        manager = get_manager()
        status, devices = manager.get_status_and_devices()
        try:
            driver = manager.get_driver_info()
        except NVMLUnavailableError:
            driver = None
        processes = find_processes(None) if self.may_see_processes(request) else None
        if not self.wants_page(request):
            dashboard = Dashboard(devices, len(devices), status, driver, processes)
            return Response(DashboardSerializer(dashboard).data)
        # This server's history and events only: a fleet may share the database.
        data_url = reverse(f"{url_prefix(request)}dashboard")
        config = page_config(request, data_url, host=socket.gethostname())
        context = page_context(devices, status, driver, processes, config)
        # Without NVML here, the site's other pages (a central site): a notice, no error.
        elsewhere = page_links(request) if status.error_message else []
        context["elsewhere"] = [link for link in elsewhere if link["name"] != "dashboard"]
        return Response(context)


class FrontPageView(GPUMonitorAPIView):
    """A site's front page (``path("", FrontPageView.as_view())``): a redirect (302) to
    the first page of the nav (``page_links``) this viewer may open and that has
    something to show: the dashboard on a GPU node, the first sub-app page on a central
    site without a GPU. The dashboard when the viewer may open none (it says why).

    ``namespace``: where the project included ``gpu_monitor.urls`` (``gpu_monitor``)."""

    namespace = "gpu_monitor"
    schema = None  # a redirect, not an operation of the JSON API

    def get_permissions(self) -> Sequence[Any]:
        return ()  # the page it leads to applies its own

    def get(self, request: Request) -> HttpResponse:
        prefix = f"{self.namespace}:" if self.namespace else ""
        links = page_links(request, prefix)
        url = links[0]["url"] if links else reverse(f"{prefix}{DASHBOARD_PAGE[1]}")
        return HttpResponseRedirect(url)
