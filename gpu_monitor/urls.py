"""URLs of the app; projects mount them with ``path("api/gpu/", include("gpu_monitor.urls"))``.

Every path answers with and without a trailing slash, without a redirect.
"""

from __future__ import annotations

from django.apps import apps
from django.urls import re_path

from gpu_monitor import dashboard, views

app_name = "gpu_monitor"

urlpatterns = [
    re_path(r"^devices/?$", views.DeviceListView.as_view(), name="devices"),
    re_path(r"^devices/(?P<index>[^/]+)/?$", views.DeviceDetailView.as_view(), name="device"),
    re_path(
        r"^devices/(?P<index>[^/]+)/processes/?$",
        views.DeviceProcessListView.as_view(),
        name="device-processes",
    ),
    re_path(r"^processes/?$", views.ProcessListView.as_view(), name="processes"),
    re_path(r"^driver/?$", views.DriverView.as_view(), name="driver"),
    re_path(r"^status/?$", views.StatusView.as_view(), name="status"),
    re_path(r"^metrics/?$", views.MetricsView.as_view(), name="metrics"),
    re_path(r"^dashboard/?$", dashboard.DashboardView.as_view(), name="dashboard"),
]
if apps.is_installed("gpu_monitor.history"):
    from gpu_monitor.history.urls import urlpatterns as history_urlpatterns

    urlpatterns += history_urlpatterns
else:
    urlpatterns += [
        re_path(r"^(history|events)/?$", views.HistoryNotInstalledView.as_view(), name="history")
    ]
urlpatterns += [re_path(r"", views.NotFoundView.as_view(), name="not-found")]
