"""URLs of the example project: the GPU API under api/gpu/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/gpu/", include("gpu_monitor.urls")),
]
