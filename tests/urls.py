from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("api/gpu/", include("gpu_monitor.urls")), path("admin/", admin.site.urls)]

if settings.OPENAPI:
    from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

    from example_project.views import OfflineRedocView

    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
        path("api/redoc/", OfflineRedocView.as_view(url_name="schema"), name="redoc"),
    ]
