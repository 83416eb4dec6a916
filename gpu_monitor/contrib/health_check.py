"""Checks for django-health-check (optional extra ``gpu-monitor[health]``): a GPU node's
GPUs, and a central site's database.

from health_check.views import HealthCheckView

path("health/", HealthCheckView.as_view(checks=[
    (
        "gpu_monitor.contrib.health_check.GPUHealthCheck",
        {"min_gpu_count": 1, "max_temperature_c": 85},
    ),
]))

A central site (the fleet, no GPU: ``GPUHealthCheck`` would always fail there) lists
``gpu_monitor.contrib.health_check.DatabaseHealthCheck`` instead: what it serves is its
database. A project that runs on machines with and without GPUs (the example project)
passes ``"nvml_required": False``: without NVML the check passes and says "no GPU".
"""

from __future__ import annotations

import dataclasses

from django.apps import apps
from django.db import DatabaseError, connections, router
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from gpu_monitor.manager import get_manager
from gpu_monitor.rules import CHECK_OF, hardware_problems, unavailable
from gpu_monitor.stored import database_unavailable
from gpu_monitor.types import GPUDevice


@dataclasses.dataclass
class GPUHealthCheck(HealthCheck):
    """Healthy when NVML works, at least ``min_gpu_count`` GPUs answer, none is hotter
    than ``max_temperature_c`` (None: no temperature limit), and no GPU shows a sign of
    failing hardware (``gpu_monitor.rules.hardware_problems``, which the dashboard's
    badges show too). Each of those signs can be turned off:

    - ``uncorrected_ecc``: uncorrected volatile ECC errors (since the driver loaded);
    - ``remap_pending``: a row remap is pending (a GPU reset applies it) or has failed;
    - ``retired_pages_pending``: retired pages are pending (GPUs before the A100);
    - ``hardware_slowdown``: ``hw_slowdown``, ``hw_thermal_slowdown`` or
      ``hw_power_brake_slowdown`` holds the clocks down.

    ``nvml_required=False``, for a machine that may have no GPU: where NVML is not
    available in this process (no driver, no GPU: the system check gpu_monitor.W001)
    the check passes, and its name in the report says ``no GPU: <reason>``
    (django-health-check 4 answers 500 for any raised exception, a ``ServiceWarning``
    too, and renders no status but "OK" for a check that passes). Every other fault (a
    GPU that NVML sees and that fails, fewer than ``min_gpu_count`` GPUs, a hardware
    problem) still fails. Left out of the name otherwise, so that the default's report
    is unchanged.
    """

    min_gpu_count: int = 1
    max_temperature_c: int | None = None
    uncorrected_ecc: bool = True
    remap_pending: bool = True
    retired_pages_pending: bool = True
    hardware_slowdown: bool = True
    nvml_required: bool = dataclasses.field(default=True, repr=False)
    state: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        """The dataclass's repr (the check's name in every report), and ``no GPU:
        <reason>`` after it while that is why the check passed."""
        shown = (f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        text = f"{type(self).__qualname__}({', '.join(shown)})"
        return f"{text} {self.state}" if self.state else text

    def pretty_status(self) -> str:
        return self.state or "OK"

    def run(self) -> None:
        manager = get_manager()
        reason = manager.error_message
        if reason is not None and not self.nvml_required:
            self.state = f"no GPU: {reason}"
            return
        if reason is not None:
            raise ServiceUnavailable(f"NVML is not available: {reason}")
        devices = manager.get_devices()
        broken = [f"GPU {d.index}: {p.message}" for d in devices if (p := unavailable(d))]
        if broken:
            raise ServiceUnavailable("; ".join(broken))
        if len(devices) < self.min_gpu_count:
            raise ServiceUnavailable(
                f"{len(devices)} GPU(s) found, at least {self.min_gpu_count} expected"
            )
        problems = [problem for device in devices for problem in self.problems(device)]
        if problems:
            raise ServiceUnavailable("; ".join(problems))

    def problems(self, device: GPUDevice) -> list[str]:
        """Each unhealthy condition of one GPU, naming the GPU and the condition."""
        gpu = f"GPU {device.index}"
        found = []
        if (
            self.max_temperature_c is not None
            and device.temperature_c is not None
            and device.temperature_c > self.max_temperature_c
        ):
            found.append(f"{gpu} at {device.temperature_c} C (limit {self.max_temperature_c} C)")
        found += [
            f"{gpu}: {problem.message}"
            for problem in hardware_problems(device)
            if getattr(self, CHECK_OF[problem.kind])
        ]
        return found


@dataclasses.dataclass
class DatabaseHealthCheck(HealthCheck):
    """Healthy when every table of the installed gpu_monitor sub-apps (history, fleet,
    usage) can be read: the database answers and is migrated. Each table is read by one
    ``SELECT 1 ... LIMIT 1`` on the database the router reads it from. No NVML: the check
    for a central site, which serves the database and has no GPU.

    ``app_labels``: the sub-apps to check (``["gpu_monitor_fleet"]``), None: every one
    installed (the core never imports a sub-app: they are found in the app registry).
    """

    app_labels: list[str] | None = None

    def run(self) -> None:
        configs = [
            config
            for config in apps.get_app_configs()
            if config.name.startswith("gpu_monitor.")
            and (self.app_labels is None or config.label in self.app_labels)
        ]
        models = [
            model
            for config in configs
            for model in config.get_models()
            if model._meta.managed and not model._meta.proxy
        ]
        if not models:
            raise ServiceUnavailable(
                "No gpu_monitor sub-app with tables is installed (gpu_monitor.history, "
                "gpu_monitor.fleet, gpu_monitor.usage): nothing to check"
            )
        for model in models:
            alias = router.db_for_read(model)
            opened = connections[alias].connection is None
            try:
                model._default_manager.using(alias).exists()
            except DatabaseError as exc:
                what = str(model._meta.app_config.verbose_name)
                detail = database_unavailable(exc, what).detail
                raise ServiceUnavailable(f"{model._meta.db_table}: {detail}") from exc
            finally:
                if opened:  # a connection of the check's thread: not left open
                    connections[alias].close()
