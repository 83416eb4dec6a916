"""System checks. Ids are never reused; every id is listed in the README."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Warning, register

from gpu_monitor.manager import get_manager


@register("gpu_monitor")
def check_nvml(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """gpu_monitor.W001: NVML is not available in this process."""
    reason = get_manager().error_message
    if reason is None:
        return []
    return [
        Warning(
            f"NVML is not available: {reason}. The GPU endpoints will report no GPUs.",
            hint=(
                "Install the NVIDIA driver (it provides libnvidia-ml.so.1), and run this "
                "process with access to /dev/nvidia* (in a container: the NVIDIA container "
                "runtime, e.g. `docker run --gpus all`)."
            ),
            id="gpu_monitor.W001",
        )
    ]
