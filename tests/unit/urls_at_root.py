"""A project that mounts the app at its root, with its own URLs after it."""

from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("", include("gpu_monitor.urls")),
    path("shop/", lambda request: HttpResponse("the project's own page")),
]
