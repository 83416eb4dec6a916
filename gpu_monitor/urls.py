"""URLs of the app; projects mount them with ``path("api/gpu/", include("gpu_monitor.urls"))``.

Every path answers with and without a trailing slash, without a redirect.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, get_script_prefix, re_path, reverse
from django.urls.resolvers import RegexPattern

from gpu_monitor import dashboard, plugins, views

app_name = "gpu_monitor"

urlpatterns: list[URLPattern | URLResolver] = [
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
# Sub-apps plug their URLs in through their declaration (``plugins.SubApp.urls``): the
# core imports none of them. A shipped sub-app that is not installed may keep its paths
# answering how to install it (``plugins.SubApp.not_installed``).
urlpatterns += plugins.urlpatterns()
ABSENT = plugins.not_installed()
for absent in ABSENT:
    urlpatterns.append(
        re_path(
            rf"^({'|'.join(map(re.escape, absent.paths))})/?$",
            views.NotInstalledView.as_view(detail=absent.detail),
            name=absent.url_name,
        )
    )


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
    reserved = {path for absent in ABSENT for path in absent.paths}  # ``^(a|b)`` patterns
    return sorted({m.group(1) for m in found if m} | reserved)


def _mounted_at_site_root() -> bool:
    return reverse(f"{app_name}:status") == f"{get_script_prefix()}status"


urlpatterns += [
    URLPattern(
        OtherPathsPattern(_first_segments(urlpatterns), name="not-found", is_endpoint=True),
        views.NotFoundView.as_view(patterns=urlpatterns),
        name="not-found",
    )
]
