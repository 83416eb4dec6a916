"""URLs of the app; projects mount them with ``path("api/gpu/", include("gpu_monitor.urls"))``.

Every path answers with and without a trailing slash, without a redirect.
"""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

from django.apps import apps
from django.urls import URLPattern, get_script_prefix, re_path, reverse
from django.urls.resolvers import RegexPattern

from gpu_monitor import dashboard, views

app_name = "gpu_monitor"

urlpatterns = [
    re_path(r"^devices/?$", views.DeviceListView.as_view(), name="devices"),
    re_path(r"^devices/(?P<gpu>[^/]+)/?$", views.DeviceDetailView.as_view(), name="device"),
    re_path(
        r"^devices/(?P<gpu>[^/]+)/processes/?$",
        views.DeviceProcessListView.as_view(),
        name="device-processes",
    ),
    re_path(r"^processes/?$", views.ProcessListView.as_view(), name="processes"),
    re_path(r"^driver/?$", views.DriverView.as_view(), name="driver"),
    re_path(r"^status/?$", views.StatusView.as_view(), name="status"),
    re_path(r"^metrics/?$", views.MetricsView.as_view(), name="metrics"),
    re_path(r"^dashboard/?$", dashboard.DashboardView.as_view(), name="dashboard"),
]
# Sub-apps plug their URLs in from their AppConfig (``gpu_monitor_urls``, a module
# path): the core imports none of them.
for config in apps.get_app_configs():
    module = getattr(config, "gpu_monitor_urls", None)
    if module:
        urlpatterns += import_module(module).urlpatterns
if not apps.is_installed("gpu_monitor.history"):
    urlpatterns += [
        re_path(r"^(history|events)/?$", views.HistoryNotInstalledView.as_view(), name="history")
    ]


class OtherPathsPattern(RegexPattern):
    """Any other path under the app, answered with a JSON 404.

    Where a project mounts the app at its root (``path("", include(...))``), "any other
    path" would be every URL of the project listed after it: there it matches only the
    app's root and paths under the app's own endpoints (``devices/0/extra``).
    """

    def __init__(self, own: list[str], **kwargs: Any) -> None:
        super().__init__(r"", **kwargs)
        names = "|".join(sorted(map(re.escape, own)))
        self.own = re.compile(rf"(?:{names})(?:/|$)|$")

    def match(self, path: str) -> tuple[str, tuple[Any, ...], dict[str, str]] | None:
        if not self.own.match(path) and _mounted_at_site_root():
            return None
        return super().match(path)


def _first_segments(patterns: list[Any]) -> list[str]:
    """The first path segment of each pattern (``devices``, ``hosts``, ...)."""
    found = (re.match(r"\^?([\w-]+)", str(p.pattern)) for p in patterns)
    return sorted({m.group(1) for m in found if m} | {"history", "events"})


def _mounted_at_site_root() -> bool:
    return reverse(f"{app_name}:status") == f"{get_script_prefix()}status"


urlpatterns += [
    URLPattern(
        OtherPathsPattern(_first_segments(urlpatterns), name="not-found", is_endpoint=True),
        views.NotFoundView.as_view(),
        name="not-found",
    )
]
