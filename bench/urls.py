"""The example project's URLs plus Django's floor: a bare view over the same manager."""

import dataclasses

from django.http import HttpRequest, JsonResponse
from django.urls import path

from example_project.urls import urlpatterns as example_urlpatterns
from gpu_monitor.manager import get_manager


def bare_devices(request: HttpRequest) -> JsonResponse:
    """The same dataclasses through JsonResponse: no DRF at all."""
    devices = get_manager().get_devices()
    return JsonResponse(
        {"devices": [dataclasses.asdict(d) for d in devices], "count": len(devices)}
    )


def bare_processes(request: HttpRequest) -> JsonResponse:
    """A floor for the processes endpoint: NVML's lists through JsonResponse, without DRF
    and without host (psutil) lookups."""
    processes, errors = get_manager().get_processes()
    return JsonResponse(
        {
            "processes": [dataclasses.asdict(p) for p in processes],
            "count": len(processes),
            "gpu_errors": errors,
        }
    )


urlpatterns = [
    path("bare/devices", bare_devices),
    path("bare/processes", bare_processes),
    *example_urlpatterns,
]
