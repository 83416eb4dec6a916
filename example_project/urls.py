"""URLs of the example project: the GPU API under api/gpu/, its OpenAPI docs, the admin."""

from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from gpu_monitor.dashboard import FrontPageView


class FaviconView(RedirectView):
    """/favicon.ico: the app's icon, by its static URL (hashed once collected)."""

    permanent = False

    def get_redirect_url(self, *args: object, **kwargs: object) -> str:
        return static("gpu_monitor/favicon.svg")


urlpatterns = [
    # The site's root: the first page with something to show (the dashboard on a GPU
    # node, the fleet on a central site without NVML).
    path("", FrontPageView.as_view()),
    path("admin/", admin.site.urls),  # read-only GPU history: samples and events
    path("api/gpu/", include("gpu_monitor.urls")),
    path("api-auth/", include("rest_framework.urls")),  # log in to the browsable API
    # The icon browsers ask for on pages that link none (the admin, health/, the API docs).
    path("favicon.ico", FaviconView.as_view()),
]

if settings.OPENAPI:
    from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

    from example_project.views import OfflineRedocView

    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
        path("api/redoc/", OfflineRedocView.as_view(url_name="schema"), name="redoc"),
    ]

if settings.HEALTH:
    from health_check.views import HealthCheckView

    urlpatterns += [
        path(
            "health/",
            HealthCheckView.as_view(
                checks=[
                    (
                        "gpu_monitor.contrib.health_check.GPUHealthCheck",
                        # This example runs with and without a GPU: without NVML it
                        # passes, named "... no GPU: <reason>"; a GPU node's project
                        # leaves nvml_required at True (a driver gone is a failure).
                        {"min_gpu_count": 1, "nvml_required": False},
                    )
                ]
            ),
            name="health",
        ),
        # The central site's check (no GPU there): the sub-apps' tables answer.
        path(
            "health/database/",
            HealthCheckView.as_view(
                checks=["gpu_monitor.contrib.health_check.DatabaseHealthCheck"]
            ),
            name="health-database",
        ),
    ]
