"""A project whose front page is ``dashboard.FrontPageView`` (docs/sub-apps.md)."""

from django.urls import include, path

from gpu_monitor.dashboard import FrontPageView

urlpatterns = [
    path("", FrontPageView.as_view()),
    path("api/gpu/", include("gpu_monitor.urls")),
]
