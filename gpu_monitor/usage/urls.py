"""URLs of the usage sub-app; gpu_monitor.urls includes them when it is installed."""

from __future__ import annotations

from django.urls import re_path

from gpu_monitor.usage import views

urlpatterns = [
    re_path(r"^usage/?$", views.UsageView.as_view(), name="usage"),
    re_path(r"^usage/idle/?$", views.IdleView.as_view(), name="usage-idle"),
]
