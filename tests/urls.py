from django.urls import include, path

urlpatterns = [path("api/gpu/", include("gpu_monitor.urls"))]
