"""URLs of the history sub-app; gpu_monitor.urls includes them when it is installed."""

from __future__ import annotations

from django.urls import re_path

from gpu_monitor.history import views

urlpatterns = [
    re_path(r"^history/?$", views.HistoryView.as_view(), name="history"),
    re_path(r"^events/?$", views.EventListView.as_view(), name="events"),
]
