"""URLs of the usage sub-app; gpu_monitor.urls includes them when it is installed."""

from __future__ import annotations

from django.urls import re_path

from gpu_monitor.usage import pages, views

urlpatterns = [
    re_path(r"^usage/?$", pages.usage_or_page, name="usage"),  # a browser: the page
    re_path(r"^usage/idle/?$", views.IdleView.as_view(), name="usage-idle"),
]
