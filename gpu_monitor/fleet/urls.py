"""URLs of the fleet sub-app; gpu_monitor.urls includes them when it is installed."""

from __future__ import annotations

from django.urls import re_path

from gpu_monitor.fleet import ingest, pages, views

urlpatterns = [
    re_path(r"^hosts/?$", views.HostListView.as_view(), name="hosts"),
    re_path(r"^hosts/(?P<host>[^/]+)/?$", views.HostDetailView.as_view(), name="host"),
    re_path(
        r"^hosts/(?P<host>[^/]+)/processes/?$",
        views.HostProcessListView.as_view(),
        name="host-processes",
    ),
    re_path(r"^ingest/?$", ingest.IngestView.as_view(), name="ingest"),
    re_path(r"^fleet/?$", pages.FleetView.as_view(), name="fleet"),
    re_path(r"^fleet/(?P<host>[^/]+)/?$", pages.FleetHostView.as_view(), name="fleet-host"),
]
